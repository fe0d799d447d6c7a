"""Labels, splits and the trained model's quality on the generator's data."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from pipelines.training.comparison import compare_with
from pipelines.training.metrics import expected_calibration_error
from pipelines.training.observations import build_observations
from pipelines.training.split import temporal_split
from pipelines.training.train import train_model
from tailor.core.database.consent import OptOutsUnreadable
from tailor.core.events import EVENT_SCHEMA
from tailor.core.model_artifact import load_artifact
from tailor.core.settings import TailorSettings
from tests.support.flow import Flow
from tests.support.services import free_port

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _events(rows: list[tuple[int, str, str, datetime]]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "event_id": f"e{index}",
                "user_id": user,
                "session_id": session,
                "event_type": kind,
                "item_id": 1,
                "category": "books",
                "price": 9.5,
                "device": "mobile",
                "country": "DE",
                "ts": ts,
            }
            for index, (user, session, kind, ts) in enumerate(rows)
        ],
        schema=EVENT_SCHEMA,
    )


def test_labels_look_ahead_exactly_the_horizon(tmp_path):
    hour = timedelta(hours=1)
    table = _events(
        [
            (1, "a", "view", T0),
            (1, "b", "view", T0 + 2 * hour),
            (1, "b", "purchase", T0 + 2 * hour + timedelta(minutes=5)),  # buys in session b
            (2, "c", "view", T0),
            (2, "d", "view", T0 + 24 * hour),
            (2, "d", "purchase", T0 + 24 * hour + timedelta(minutes=1)),  # just past 24 h of c
            (3, "e", "view", T0 + 40 * hour),  # horizon runs past the data: no label yet
            (3, "f", "view", T0 + 60 * hour),
        ]
    )
    pq.write_table(table, tmp_path / "events.parquet")
    frame = build_observations(tmp_path, horizon_hours=24, max_rows=None, excluded_users=())
    labels = dict(zip(frame["session_id"], frame["label"], strict=True))
    assert labels == {"a": 1, "b": 1, "c": 0, "d": 1}
    first = frame.set_index("session_id").loc["a"]
    assert first["device"] == "mobile"
    assert first["request_ts_s"] == int(T0.timestamp())


def test_missing_events_say_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="tailor generate"):
        build_observations(tmp_path, horizon_hours=24, max_rows=None, excluded_users=())


def test_the_split_is_temporal_with_an_embargo():
    times = pd.date_range("2026-01-01", periods=1000, freq="h", tz="UTC")
    frame = pd.DataFrame({"event_timestamp": times, "label": [0, 1] * 500})
    split = temporal_split(frame, valid_fraction=0.15, test_fraction=0.15, horizon_hours=24)
    assert split.train["event_timestamp"].max() + timedelta(hours=24) <= split.valid_start
    assert split.valid["event_timestamp"].max() + timedelta(hours=24) <= split.test_start
    assert split.test["event_timestamp"].min() >= split.test_start
    assert len(split.test) == 150


METRICS = {"auc", "pr_auc", "logloss", "brier", "ece", "top_decile_lift"}


def test_the_model_beats_the_baseline_and_nears_the_oracle(flow):
    metadata = json.loads((flow.models_dir / "latest" / "metadata.json").read_text())
    metrics = metadata["metrics"]
    assert metadata["oracle_auc"] is not None
    assert metrics["auc"] >= 0.9 * metadata["oracle_auc"], metadata
    assert metrics["auc"] > metadata["baseline_auc"], metadata
    assert set(metrics) == set(metadata["metrics_uncalibrated"]) == METRICS
    assert metrics["top_decile_lift"] > 1.5
    assert metadata["feature_service"] == "personalization_v1"
    assert "last_event_epoch_s" not in metadata["features"]
    assert "hours_since_last_event_now" in metadata["features"]
    window = metadata["training_window"]
    assert window["start"] < window["valid_start"] < window["test_start"] < window["end"]


def test_the_artifact_loads_and_scores(flow):
    artifact = load_artifact(flow.models_dir)
    assert artifact.version == (flow.models_dir / "latest").resolve().name
    rows = np.full((1, len(artifact.features)), np.nan)
    propensity = artifact.predict(rows)[0]
    assert 0.0 < propensity < 1.0
    assert 0.0 <= artifact.percentile(propensity) <= 1.0
    contributions = artifact.contributions(rows)
    assert contributions.shape == (1, len(artifact.features) + 1)


def test_users_who_opted_out_leave_no_row_and_move_nobody_elses_horizon(tmp_path):
    hour = timedelta(hours=1)
    table = _events(
        [
            (1, "a", "view", T0),
            (1, "a", "purchase", T0 + hour),
            (2, "b", "view", T0),
            (2, "c", "view", T0 + 20 * hour),
            (3, "d", "view", T0 + 30 * hour),  # the last event of all: the data's end
        ]
    )
    pq.write_table(table, tmp_path / "events.parquet")
    everyone = build_observations(tmp_path, horizon_hours=24, max_rows=None, excluded_users=())
    assert set(everyone["user_id"]) == {1, 2}  # 3's horizon runs past the data
    without = build_observations(tmp_path, horizon_hours=24, max_rows=None, excluded_users={1, 3})
    assert list(without["session_id"]) == ["b"]
    kept = everyone[everyone["user_id"] == 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(without, kept)


def test_training_refuses_to_start_without_knowing_who_opted_out(tmp_path):
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/tailor"
    settings = TailorSettings(home=tmp_path, decisions={"database_url": dead})
    with pytest.raises(OptOutsUnreadable, match="cannot read who opted out"):
        train_model(settings)


def test_the_first_model_says_what_it_chose_and_why(flow):
    """The demo's model: nothing replaced, the search's outcome and the calibration's
    effect on record, and `tailor train` printed where the report is."""
    metadata = json.loads((flow.models_dir / "latest" / "metadata.json").read_text())
    assert metadata["previous_model"] is None
    selection = metadata["model_selection"]
    assert selection["selected"] in selection["candidates"]
    assert selection["reason"].startswith(selection["selected"])
    assert metadata["tuning"]["trials"] >= 1
    if "tuned" in selection["candidates"]:
        tuned, default = (selection["candidates"][n]["test_metrics"] for n in ("tuned", "default"))
        as_good = tuned["auc"] >= default["auc"] and tuned["logloss"] <= default["logloss"]
        assert selection["tuned_against_default"]["tuned_at_least_as_good"] == as_good
        assert ("worse" in selection["tuned_against_default"]["verdict"]) == (not as_good)
    effect = metadata["calibration_effect"]
    before, after = metadata["metrics_uncalibrated"]["ece"], metadata["metrics"]["ece"]
    assert effect["ece_reduced_on_test"] == (after < before)
    assert f"{before:.4f} before, {after:.4f} after" in effect["verdict"]
    report = flow.models_dir / metadata["version"] / "report.html"
    assert f"report: {report}" in " ".join(flow.output.split())


@pytest.fixture(scope="module")
def retrained(flow: Flow, tmp_path_factory):
    """A second training run over the demo's data, beside a copy of its models: the
    demo's model is the one it would replace. A small search keeps it quick."""
    models = tmp_path_factory.mktemp("retrain") / "models"
    shutil.copytree(flow.models_dir, models, symlinks=True)
    replaced = load_artifact(models)
    settings = flow.settings(models_dir=models, training={"tuning_trials": 3, "shap_rows": 500})
    return train_model(settings), replaced


def _served(artifact, test: pd.DataFrame) -> np.ndarray:
    return artifact.predict(test[artifact.features].astype("float64").to_numpy())


def test_the_recorded_metrics_are_those_of_the_served_model(retrained):
    report, _ = retrained
    metadata = json.loads((report.path / "metadata.json").read_text())
    artifact = load_artifact(report.path.parent, report.version)
    labels = report.test_split["label"].to_numpy()
    scores = _served(artifact, report.test_split)
    metrics = metadata["metrics"]
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert metrics["logloss"] == pytest.approx(log_loss(labels, scores))
    assert metrics["brier"] == pytest.approx(brier_score_loss(labels, scores))
    # ECE itself is checked against scikit-learn in test_training_metrics.py.
    assert metrics["ece"] == expected_calibration_error(labels, scores, 10)
    raw = artifact.booster.predict(report.test_split[artifact.features].astype(float).to_numpy())
    assert metadata["metrics_uncalibrated"]["logloss"] == pytest.approx(log_loss(labels, raw))
    # Percentiles follow the calibrated scores: the median test row sits at one half.
    grid = np.linspace(0.0, 1.0, 101)
    np.testing.assert_allclose(metadata["score_quantiles"], np.quantile(scores, grid))
    assert artifact.percentile(float(np.median(scores))) == pytest.approx(0.5)


def test_a_retrained_model_is_compared_with_the_one_it_replaces_on_the_same_rows(retrained):
    report, replaced = retrained
    previous = json.loads((report.path / "metadata.json").read_text())["previous_model"]
    assert previous["version"] == replaced.version
    assert previous["comparable"] is True
    labels = report.test_split["label"].to_numpy()
    scores = _served(replaced, report.test_split)
    assert previous["metrics"]["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert previous["metrics"]["logloss"] == pytest.approx(log_loss(labels, scores))
    # The demo's model had the same split, so it never saw these rows: no caveat.
    assert previous["note"] == "scored on the same test rows as the new model"


def test_a_replaced_model_that_saw_the_test_period_or_lacks_features_is_flagged(retrained):
    report, replaced = retrained
    test, test_start = report.test_split, report.test_split["event_timestamp"].min()
    later = dict(
        replaced.metadata["training_window"],
        test_start=test["event_timestamp"].max().isoformat(),
    )
    newer = dataclasses.replace(replaced, metadata=replaced.metadata | {"training_window": later})
    summary, scores = compare_with(newer, test, test_start, bins=10)
    assert summary["comparable"] and scores is not None
    assert "may have seen these rows" in summary["note"]

    summary, scores = compare_with(replaced, test.drop(columns=["cart_value"]), test_start, 10)
    assert not summary["comparable"] and scores is None
    assert summary["metrics"] == replaced.metadata["metrics"]
    assert "not comparable" in summary["note"] and "cart_value" in summary["note"]


def test_the_report_is_one_self_contained_page_with_every_section(retrained):
    report, replaced = retrained
    page = report.report_path.read_text()
    assert report.report_path == report.path / "report.html"
    images = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert len(images) >= 5
    assert all(source.startswith("data:image/png;base64,") for source in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    for section in (
        "ROC and precision-recall",
        "Calibration",
        "Cumulative gain and lift",
        "Feature importance",
        "Tuned against default parameters",
        "Against the model it would replace",
    ):
        assert f"<h2>{section}</h2>" in page
    assert f"replaced model {replaced.version}" in page
    assert "did not reduce" in page or "reduced the" in page
