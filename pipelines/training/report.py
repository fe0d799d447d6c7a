"""`models/<version>/report.html`: what a data scientist checks before trusting a model.

One self-contained file (charts are PNGs inlined as base64, styles inline), so it can
be mailed, archived or served as is. The numbers come from the model's metadata, so
the report cannot disagree with it; the curves come from the test split's scores.
Charts are drawn on matplotlib `Figure`s directly (the Agg canvas, no pyplot state),
as matplotlib advises for code that is not interactive.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from tailor.core.model_artifact import REPORT_FILE

TOP_FEATURES = 15
METRIC_COLUMNS = {
    "auc": "AUC",
    "pr_auc": "PR-AUC",
    "logloss": "log loss",
    "brier": "Brier",
    "ece": "ECE",
    "top_decile_lift": "top-decile lift",
}
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
td, th { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.verdict { padding: 0.5rem 1rem; border-left: 4px solid #888; background: #f4f4f4; }
.worse { border-left-color: #c0392b; }
img { max-width: 100%; }
"""


@dataclass(frozen=True)
class ReportScores:
    """Scores of the test split's rows, in one order, one array per scorer."""

    labels: np.ndarray
    model: np.ndarray  # calibrated, as served
    uncalibrated: np.ndarray
    baseline: np.ndarray
    oracle: np.ndarray | None
    previous: np.ndarray | None

    def rankers(self, previous_version: str | None) -> dict[str, np.ndarray]:
        named = {"model": self.model, "baseline (recency x frequency)": self.baseline}
        if self.oracle is not None:
            named["oracle (true propensity)"] = self.oracle
        if self.previous is not None:
            named[f"replaced model {previous_version}"] = self.previous
        return named


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/png;base64,{encoded}">'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return html.escape("-" if value is None else str(value))

    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _roc_and_pr(scores: ReportScores, previous_version: str | None) -> str:
    figure = Figure(figsize=(11, 4.5))
    roc, pr = figure.subplots(1, 2)
    for name, values in scores.rankers(previous_version).items():
        fpr, tpr, _ = roc_curve(scores.labels, values)
        roc.plot(fpr, tpr, label=name)
        precision, recall, _ = precision_recall_curve(scores.labels, values)
        pr.plot(recall, precision, label=name)
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    pr.axhline(scores.labels.mean(), color="grey", linestyle=":", label="base rate")
    roc.set(title="ROC", xlabel="false positive rate", ylabel="true positive rate")
    pr.set(title="Precision-recall", xlabel="recall", ylabel="precision")
    roc.legend(fontsize="small")
    pr.legend(fontsize="small")
    return _png(figure)


def _calibration(scores: ReportScores, bins: int) -> str:
    figure = Figure(figsize=(11, 4.5))
    curve, spread = figure.subplots(1, 2)
    for name, values in (("before calibration", scores.uncalibrated), ("after", scores.model)):
        observed, predicted = calibration_curve(
            scores.labels, values, n_bins=bins, strategy="quantile"
        )
        curve.plot(predicted, observed, marker="o", label=name)
        spread.hist(values, bins=np.linspace(0, 1, bins + 1), alpha=0.5, label=name)
    curve.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    curve.set(title="Calibration on test", xlabel="mean predicted", ylabel="observed rate")
    spread.set(title="Test scores", xlabel="score", ylabel="rows")
    curve.legend(fontsize="small")
    spread.legend(fontsize="small")
    return _png(figure)


def _gain_and_lift(scores: ReportScores, previous_version: str | None) -> str:
    figure = Figure(figsize=(11, 4.5))
    gain, lift = figure.subplots(1, 2)
    share = np.arange(1, len(scores.labels) + 1) / len(scores.labels)
    deciles = np.arange(1, 11)
    rankers = scores.rankers(previous_version)
    width = 0.8 / len(rankers)
    for index, (name, values) in enumerate(rankers.items()):
        ordered = scores.labels[np.argsort(-values, kind="stable")]
        gained = np.cumsum(ordered) / ordered.sum()
        gain.plot(share, gained, label=name)
        per_decile = [part.mean() for part in np.array_split(ordered, 10)]
        lift.bar(deciles + index * width, np.array(per_decile) / ordered.mean(), width, label=name)
    gain.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    lift.axhline(1.0, color="grey", linestyle=":")
    gain.set(title="Cumulative gain", xlabel="share of rows, best first", ylabel="share of buyers")
    lift.set(title="Lift per decile", xlabel="decile (1 = highest scores)", ylabel="lift")
    gain.legend(fontsize="small")
    lift.legend(fontsize="small")
    return _png(figure)


def _importance(gain: dict[str, float], shap: dict[str, float]) -> str:
    figure = Figure(figsize=(11, 5))
    for axes, (title, values) in zip(
        figure.subplots(1, 2),
        (("Total split gain", gain), ("Mean |SHAP| on test (log-odds)", shap)),
        strict=True,
    ):
        top = list(values.items())[:TOP_FEATURES][::-1]
        axes.barh([name for name, _ in top], [value for _, value in top])
        axes.set(title=title)
        axes.tick_params(axis="y", labelsize="small")
    figure.subplots_adjust(wspace=0.6)
    return _png(figure)


def _search_history(history: list[float | None]) -> str:
    figure = Figure(figsize=(6, 3.5))
    axes = figure.subplots()
    trials = [(index, value) for index, value in enumerate(history) if value is not None]
    axes.plot([i for i, _ in trials], [v for _, v in trials], "o", label="trial")
    best = np.minimum.accumulate([v for _, v in trials])
    axes.step([i for i, _ in trials], best, where="post", label="best so far")
    axes.set(title="Search (trial 0 = defaults)", xlabel="trial", ylabel="CV log loss")
    axes.legend(fontsize="small")
    return _png(figure)


def _metrics_row(name: str, metrics: dict[str, float]) -> list[Any]:
    return [name, *(metrics.get(key) for key in METRIC_COLUMNS)]


def _metrics_rows(metadata: dict[str, Any]) -> list[list[Any]]:
    rows = [
        _metrics_row("model (calibrated, as served)", metadata["metrics"]),
        _metrics_row("model before calibration", metadata["metrics_uncalibrated"]),
    ]
    previous = metadata.get("previous_model")
    if previous and previous["comparable"]:
        rows.append(_metrics_row(f"replaced model {previous['version']}", previous["metrics"]))
    return rows


def _tuning_section(metadata: dict[str, Any], tuning: dict[str, Any]) -> str:
    selection = metadata["model_selection"]
    candidates = selection["candidates"]
    parts = [f"<p>Kept: <b>{html.escape(selection['reason'])}</b></p>"]
    if "history" in tuning:
        parts.append(
            f"<p>{tuning['trials']} trial(s), {tuning['pruned']} pruned, in "
            f"{tuning['seconds']:.1f} s; CV log loss of the defaults "
            f"{tuning['cv_logloss_default']:.5f}, of the best trial "
            f"{tuning['cv_logloss_best']:.5f}.</p>"
        )
    comparison = selection.get("tuned_against_default")
    if comparison is not None:
        css = "verdict" if comparison["tuned_at_least_as_good"] else "verdict worse"
        parts.append(f'<p class="{css}">{html.escape(comparison["verdict"])}</p>')
    names = list(candidates)
    params = list(next(iter(candidates.values()))["params"])
    rows = [[name, *(candidates[c]["params"][name] for c in names)] for name in params]
    rows += [
        ["best iteration", *(candidates[c]["best_iteration"] for c in names)],
        ["validation log loss", *(candidates[c]["valid_logloss"] for c in names)],
        ["calibration", *(candidates[c]["calibration"] for c in names)],
    ]
    rows += [
        [f"test {label}", *(candidates[c]["test_metrics"][key] for c in names)]
        for key, label in METRIC_COLUMNS.items()
    ]
    parts.append(_table(["", *names], rows))
    if "history" in tuning:
        parts.append(_search_history(tuning["history"]))
    return "".join(parts)


def _calibration_section(metadata: dict[str, Any], chart: str) -> str:
    effect = metadata["calibration_effect"]
    css = "verdict" if effect["ece_reduced_on_test"] else "verdict worse"
    crossed = metadata["calibration_choice"]["cross_fitted_on_validation"]
    table = _table(
        ["out of fold on validation", "log loss", "ECE"],
        [[name, values["logloss"], values["ece"]] for name, values in crossed.items()],
    )
    return f'<p class="{css}">{html.escape(effect["verdict"])}</p>{table}{chart}'


def _previous_section(previous: dict[str, Any] | None) -> str:
    if previous is None:
        return "<p>No model was in use (no <code>latest</code>): nothing to compare with.</p>"
    table = _table(
        ["", *METRIC_COLUMNS.values()], [_metrics_row(previous["version"], previous["metrics"])]
    )
    css = "verdict" if previous["comparable"] else "verdict worse"
    return f'<p class="{css}">{html.escape(previous["note"])}</p>{table}'


def render_report(metadata: dict[str, Any], scores: ReportScores, bins: int) -> str:
    previous = metadata.get("previous_model")
    previous_version = previous["version"] if previous else None
    window = metadata["training_window"]
    oracle = metadata["oracle_auc"]
    calibration = metadata["calibration_choice"]
    facts = [
        ["feature service", metadata["feature_service"]],
        ["label", metadata["label"]],
        ["training window", f"{window['start']} to {window['end']}"],
        ["validation from / test from", f"{window['valid_start']} / {window['test_start']}"],
        ["rows train / valid / test", " / ".join(f"{n:,}" for n in metadata["rows"].values())],
        ["base rate train / test", " / ".join(f"{r:.4f}" for r in metadata["base_rate"].values())],
        ["calibration", f"{calibration['method']} ({calibration['chosen_by']})"],
        ["baseline AUC", metadata["baseline_auc"]],
        ["oracle AUC", oracle if oracle is not None else "n/a (no ground truth)"],
    ]
    sections = [
        ("Facts", _table(["", ""], facts)),
        ("Test metrics", _table(["", *METRIC_COLUMNS.values()], _metrics_rows(metadata))),
        ("ROC and precision-recall", _roc_and_pr(scores, previous_version)),
        ("Calibration", _calibration_section(metadata, _calibration(scores, bins))),
        ("Cumulative gain and lift", _gain_and_lift(scores, previous_version)),
        (
            "Feature importance",
            _importance(metadata["feature_importance_gain"], metadata["feature_importance_shap"]),
        ),
        ("Tuned against default parameters", _tuning_section(metadata, metadata["tuning"])),
        ("Against the model it would replace", _previous_section(previous)),
    ]
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    title = f"Model {html.escape(metadata['version'])}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body><h1>{title}</h1>{body}</body></html>"
    )


def write_report(folder: Path, page: str) -> Path:
    """Written beside the model and renamed into place: a reader never sees half a page."""
    target = folder / REPORT_FILE
    temporary = folder / f".{REPORT_FILE}.{os.getpid()}"
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, target)
    return target
