"""Train the purchase-propensity model and write a versioned artifact with its report
(a candidate: `retrain.train_and_judge` decides whether it becomes champion).

Users who opted out are left out of the training rows. Who they are is read from the
decision database first: if it cannot be read, training stops before any work
(`OptOutsUnreadable`) instead of training on everyone.

A run searches hyperparameters on time-series folds of the training split
(`tuning`), trains the configured and the tuned parameters (`candidates`), keeps the
better on validation, calibrates it on validation (`calibration`), and measures it,
the model it would replace, a heuristic baseline and the generator's oracle on the
test split (`report`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from feature_repo.feature_services import personalization_v1
from feature_repo.store import open_store
from pipelines.monitoring.profile import write_reference_profile
from pipelines.training.boosting import default_params
from pipelines.training.calibration import calibration_effect
from pipelines.training.candidates import (
    DEFAULT,
    TUNED,
    Candidate,
    select,
    train_candidate,
    tuned_against_default,
)
from pipelines.training.comparison import compare_with, current_model
from pipelines.training.dataset import historical_features, model_features
from pipelines.training.importance import gain_importance, shap_importance
from pipelines.training.metrics import (
    expected_calibration_error,
    oracle_scores,
    recency_frequency_score,
)
from pipelines.training.observations import build_observations
from pipelines.training.report import ReportScores, render_report, write_report
from pipelines.training.split import TemporalSplit, temporal_split
from pipelines.training.tuning import SearchResult, search_params
from tailor.core.database.consent import read_opted_out
from tailor.core.model_artifact import save_artifact
from tailor.core.settings import TailorSettings, TrainingSettings

FEATURE_SERVICE = personalization_v1.name


@dataclass(frozen=True)
class TrainReport:
    version: str
    path: Path
    rows: dict[str, int]
    metrics: dict[str, float]  # on test, calibrated (as served)
    metrics_uncalibrated: dict[str, float]
    baseline_auc: float
    oracle_auc: float | None
    best_iteration: int
    selected: str  # which candidate was kept and why: "tuned: lower validation log loss ..."
    calibration: str
    report_path: Path
    test_split: pd.DataFrame  # the rows the metrics and the report are computed on
    seconds: float


def _candidates(
    split: TemporalSplit,
    features: list[str],
    config: TrainingSettings,
    step: Callable[[str], None],
) -> tuple[list[Candidate], SearchResult | None]:
    """The configured parameters, and the search's best when it found better ones."""
    defaults = default_params(config)
    search = None
    if config.tuning_trials > 0:
        step(
            f"searching hyperparameters: up to {config.tuning_trials} trials or "
            f"{config.tuning_seconds:g} s on {config.tuning_folds} time-series folds"
        )
        search = search_params(split.train, features, defaults, config)
    step(f"training LightGBM on {len(split.train):,} rows, validating on {len(split.valid):,}")
    candidates = [train_candidate(DEFAULT, defaults, split, features, config)]
    if search is not None and not search.default_won:
        candidates.append(train_candidate(TUNED, search.params, split, features, config))
    return candidates, search


def _selection(
    candidates: list[Candidate], search: SearchResult | None
) -> tuple[Candidate, dict[str, Any]]:
    if search is None:
        only = "default: tuning is off (training.tuning_trials=0)"
    else:
        only = (
            "default: the search found nothing better than the configured parameters "
            f"on the time-series folds (CV log loss {search.default_cv_logloss:.5f})"
        )
    chosen, reason = select(candidates, only)
    selection: dict[str, Any] = {
        "selected": chosen.name,
        "reason": reason,
        "candidates": {candidate.name: candidate.summary() for candidate in candidates},
    }
    if len(candidates) == 2:
        selection["tuned_against_default"] = tuned_against_default(*candidates)
    return chosen, selection


def train_model(
    settings: TailorSettings, on_step: Callable[[str], None] | None = None
) -> TrainReport:
    started = time.perf_counter()
    step = on_step or (lambda _message: None)
    config = settings.training

    step("reading who opted out")
    opted_out = read_opted_out(settings.decision_database_url, settings.decisions.auto_migrate)
    step(f"building observations and labels from events, without {len(opted_out):,} opted out")
    observations = build_observations(
        settings.events_dir,
        config.label_horizon_hours,
        config.max_observations,
        excluded_users=opted_out,
    )
    step(f"fetching point-in-time features for {len(observations):,} observations")
    store = open_store(settings)
    service = store.get_feature_service(FEATURE_SERVICE)
    features = model_features(service)
    frame = historical_features(store, service, observations)

    split = temporal_split(
        frame, config.valid_fraction, config.test_fraction, config.label_horizon_hours
    )
    replaced = current_model(settings.models_dir)
    candidates, search = _candidates(split, features, config, step)
    chosen, selection = _selection(candidates, search)

    step(f"evaluating on {len(split.test):,} test rows")
    test_labels = split.test["label"].to_numpy()
    baseline = recency_frequency_score(split.test)
    oracle = oracle_scores(split.test, settings.ground_truth_dir)
    oracle_ece = (
        None
        if oracle is None
        else expected_calibration_error(test_labels, oracle, config.calibration_bins)
    )
    previous, previous_scores = (
        compare_with(replaced, split.test, split.test_start, config.calibration_bins)
        if replaced is not None
        else (None, None)
    )

    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    metadata = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "feature_service": FEATURE_SERVICE,
        "features": features,
        "label": f"purchase within {config.label_horizon_hours} h after a session start",
        "training_window": {
            "start": split.train["event_timestamp"].min().isoformat(),
            "end": split.test["event_timestamp"].max().isoformat(),
            "valid_start": split.valid_start.isoformat(),
            "test_start": split.test_start.isoformat(),
        },
        "rows": {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)},
        "opted_out_users_excluded": len(opted_out),
        "base_rate": {
            name: float(part["label"].mean())
            for name, part in (("train", split.train), ("test", split.test))
        },
        "metrics": chosen.metrics,
        "metrics_uncalibrated": chosen.metrics_uncalibrated,
        "baseline_auc": float(roc_auc_score(test_labels, baseline)),
        "oracle_auc": None if oracle is None else float(roc_auc_score(test_labels, oracle)),
        "calibration": chosen.calibration.calibration.to_dict(),
        "calibration_choice": chosen.calibration.summary(),
        "calibration_effect": calibration_effect(
            chosen.calibration.calibration.method,
            chosen.metrics_uncalibrated["ece"],
            chosen.metrics["ece"],
            oracle_ece,
        ),
        "score_quantiles": np.quantile(chosen.test_scores, np.linspace(0.0, 1.0, 101)).tolist(),
        "best_iteration": chosen.booster.best_iteration,
        "params": chosen.params,
        "model_selection": selection,
        "tuning": search.summary() if search is not None else {"trials": 0},
        "previous_model": previous,
        "feature_importance_gain": gain_importance(chosen.booster, features),
        "feature_importance_shap": shap_importance(
            chosen.booster, split.test, features, config.shap_rows, config.seed
        ),
    }
    page = render_report(
        metadata,
        ReportScores(
            labels=test_labels,
            model=chosen.test_scores,
            uncalibrated=chosen.test_uncalibrated,
            baseline=baseline,
            oracle=oracle,
            previous=previous_scores,
        ),
        config.calibration_bins,
    )
    path = save_artifact(settings.models_dir, version, chosen.booster, metadata)
    report_path = write_report(path, page)
    # Drift monitoring's reference: the most recent rows, nearest to what will be served.
    write_reference_profile(path, split.test, settings.monitoring)
    return TrainReport(
        version=version,
        path=path,
        rows=metadata["rows"],
        metrics=chosen.metrics,
        metrics_uncalibrated=chosen.metrics_uncalibrated,
        baseline_auc=metadata["baseline_auc"],
        oracle_auc=metadata["oracle_auc"],
        best_iteration=chosen.booster.best_iteration,
        selected=selection["reason"],
        calibration=chosen.calibration.calibration.method,
        report_path=report_path,
        test_split=split.test,
        seconds=time.perf_counter() - started,
    )
