"""A monitoring run on a real decision database (SQLite and PostgreSQL): which decisions
each window takes, what it finds in them, and the row it stores. A small real model
stands in for the flow's, so the drift and the conversions are the test's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sqlalchemy import Engine, delete, insert

from pipelines.monitoring.monitor import run_monitor
from pipelines.monitoring.profile import write_reference_profile
from tailor.core.database.engine import open_database
from tailor.core.database.schema import decisions, monitoring_runs, outcomes
from tailor.core.decision_record import DecisionRecord
from tailor.core.model_artifact import ModelArtifact, load_artifact, save_artifact
from tailor.core.model_registry import promote
from tailor.core.monitoring_run import recent_runs
from tailor.core.settings import MonitoringSettings, TailorSettings

NOW = datetime(2026, 3, 4, 10, tzinfo=UTC)
FEATURES = ["x", "flag"]
DEVICES, DEVICE_SHARES = ["mobile", "desktop", "tablet"], [0.5, 0.4, 0.1]


def _rows(rng: np.random.Generator, n: int, x_mean: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(x_mean, 1.0, n),
            "flag": (rng.random(n) < 0.3).astype(int),
            "device": rng.choice(DEVICES, n, p=DEVICE_SHARES),
        }
    )


def _train(models_dir: Path, version: str, profiled: bool) -> ModelArtifact:
    rng = np.random.default_rng(0)
    frame = _rows(rng, 5000)
    logit = frame["x"] - 2.3 + 0.5 * frame["flag"]
    label = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 0},
        lgb.Dataset(frame[FEATURES].to_numpy(float), label=label, feature_name=FEATURES),
        num_boost_round=30,
    )
    metadata = {
        "version": version,
        "feature_service": "personalization_v1",
        "features": FEATURES,
        "score_quantiles": [0.0, 1.0],
        "metrics": {"auc": 0.75},
    }
    path = save_artifact(models_dir, version, booster, metadata)
    if profiled:
        frame["event_timestamp"] = pd.date_range(NOW - timedelta(days=30), periods=5000, freq="min")
        write_reference_profile(path, frame, MonitoringSettings())
    promote(models_dir, version, actor="test", reason="the model monitored", at=NOW)
    return load_artifact(models_dir, version)


@dataclass
class Setup:
    settings: TailorSettings
    database: Engine
    model: ModelArtifact


@pytest.fixture
def setup(database_url: str, tmp_path: Path) -> Iterator[Setup]:
    database = open_database(database_url)
    with database.begin() as connection:
        for table in (decisions, outcomes, monitoring_runs):
            connection.execute(delete(table))
    settings = TailorSettings(
        home=tmp_path,
        decisions={"database_url": database_url},
        monitoring={"window_hours": 24, "performance_window_hours": 48},
    )
    model = _train(settings.models_dir, "v1", profiled=True)
    yield Setup(settings, database, model)
    database.dispose()


def _record(
    created_at: datetime,
    model: str | None,
    propensity: float | None,
    features: dict | None,
    device: str = "desktop",
) -> DecisionRecord:
    return DecisionRecord(
        decision_id=uuid.uuid4().hex,
        created_at=created_at,
        user_id=1,
        placement="homepage_banner",
        variant_id="welcome",
        config_version="c1",
        model_version=model,
        degraded=[],
        request={"user_id": 1, "context": {"device": device, "country": "DE"}},
        decision={},
        propensity=propensity,
        features=features,
    )


def _insert(database: Engine, records: list[DecisionRecord], converted: list[bool]) -> None:
    conversions = [
        {
            "outcome_id": f"{record.decision_id}:{kind}",
            "decision_id": record.decision_id,
            "type": kind,
            "value": 10.0 if kind == "conversion" else None,
            "ts": record.created_at + timedelta(minutes=5),
            "recorded_at": record.created_at + timedelta(minutes=5),
        }
        for record, bought in zip(records, converted, strict=True)
        for kind in (("impression", "conversion") if bought else ("impression",))
    ]
    with database.begin() as connection:
        connection.execute(insert(decisions), [vars(record) for record in records])
        connection.execute(insert(outcomes), conversions)


def _drifted_window(setup: Setup, rng: np.random.Generator) -> list[DecisionRecord]:
    """2,000 scored decisions of the last day with x shifted by one deviation; every
    fourth was not sampled for the feature log. Decisions without a score, or after
    the run's instant, are not the window's."""
    rows = _rows(rng, 2000, x_mean=1.0)
    scores = setup.model.predict(rows[FEATURES].to_numpy(float))
    return [
        _record(
            NOW - timedelta(hours=23) + timedelta(seconds=30 * i),
            "v1",
            float(scores[i]),
            None if i % 4 == 3 else {"x": float(rows["x"][i]), "flag": int(rows["flag"][i])},
            device=rows["device"][i],
        )
        for i in range(len(rows))
    ] + [
        _record(NOW - timedelta(hours=1), None, None, None),
        _record(NOW + timedelta(minutes=1), "v1", 0.5, {"x": 9.0, "flag": 1}),
    ]


def test_a_run_finds_the_shifted_input_and_judges_the_matured_decisions(setup):
    rng = np.random.default_rng(1)
    window = _drifted_window(setup, rng)
    _insert(setup.database, window, [False] * len(window))

    # The performance window ends a day before the run: 3,000 decisions of the served
    # model whose conversion rate falls to a third halfway through, and 500 of another.
    start = NOW - timedelta(hours=24 + 48)
    rows = _rows(rng, 3000)
    scores = setup.model.predict(rows[FEATURES].to_numpy(float))
    served = [
        _record(start + timedelta(seconds=50 * i), "v1", float(scores[i]), None)
        for i in range(len(rows))
    ]
    change_at = served[1500].created_at
    bought = rng.random(len(rows)) < np.where(np.arange(len(rows)) < 1500, scores, scores / 3)
    other = [_record(start + timedelta(seconds=97 * i), "v0", 0.5, None) for i in range(500)]
    _insert(setup.database, served, list(bought))
    _insert(setup.database, other, list(rng.random(500) < 0.5))

    run = run_monitor(setup.settings, now=NOW)

    assert run.decisions == 2000
    assert run.details["inputs"]["x"]["values"] == 1500  # the sampled vectors
    assert run.details["inputs"]["device"]["values"] == 2000  # every request's context
    assert run.feature_psi["x"] >= 0.25
    assert run.feature_psi["flag"] < 0.1 and run.feature_psi["device"] < 0.1
    assert (run.max_feature, run.max_feature_psi) == ("x", run.feature_psi["x"])
    assert run.score_psi >= 0.25  # a larger x means a larger score
    assert run.status == "alert"
    assert {"feature_psi_alert:x", "score_psi_alert"} <= set(run.reasons)

    assert (run.outcome_decisions, run.conversions) == (3000, int(bought.sum()))
    assert run.auc_live == pytest.approx(roc_auc_score(bought, scores))
    assert run.observed_expected == pytest.approx(bought.sum() / scores.sum())
    assert run.conversion_changes >= 1 and run.last_change_at > change_at
    assert "conversion_rate_change" in run.reasons

    with setup.database.connect() as connection:
        assert recent_runs(connection, 5) == [run]


def test_without_a_reference_profile_drift_is_not_judged_and_the_run_warns(setup):
    _train(setup.settings.models_dir, "v2", profiled=False)  # now the served model
    window = _drifted_window(setup, np.random.default_rng(2))
    served = [replace(record, model_version="v2") for record in window]
    _insert(setup.database, served, [False] * len(served))

    run = run_monitor(setup.settings, now=NOW)

    assert (run.model_version, run.status, run.reasons) == ("v2", "warn", ["no_reference_profile"])
    assert run.feature_psi == {} and run.score_psi is None
    assert any("has no reference profile" in note for note in run.details["notes"])


def test_too_few_decisions_are_noted_not_judged(setup):
    few = _drifted_window(setup, np.random.default_rng(3))[:100]
    _insert(setup.database, few, [False] * len(few))

    run = run_monitor(setup.settings, now=NOW)

    assert (run.status, run.reasons, run.decisions) == ("ok", [], 100)
    assert run.feature_psi == {} and run.max_feature is None
    assert any("min_decisions=500" in note for note in run.details["notes"])
