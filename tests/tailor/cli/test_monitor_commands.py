"""Drift monitoring end to end on the flow's model: a shifted generator's visits decided
through the real engine, `tailor monitor` once and on a schedule, and what the API
shows of its runs (/v1/monitoring and the gauges on /metrics)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from pipelines.monitoring.monitor import run_monitor
from tailor.cli.experiment_commands import run_simulation
from tailor.cli.monitor_commands import EXIT_CODES
from tailor.core.database.engine import open_database
from tailor.core.database.schema import monitoring_runs
from tailor.core.model_artifact import LATEST, load_artifact
from tailor.core.model_registry import ledger
from tailor.core.monitoring_run import MonitoringRun, recent_runs
from tests.support.flow import (
    CLOCK_START,
    FLOW_DAYS,
    FLOW_USERS,
    SESSION_FEATURES,
    TAILOR,
    Flow,
    run_tailor,
)
from tests.support.waiting import wait_for

# The day after the generated history, as production serves the day after a
# materialization: the online features are what training saw at that point in time.
DAY = CLOCK_START.replace(hour=0)
VISITS = 1500
SHIPPED = {"mobile": 0.55, "desktop": 0.35, "tablet": 0.10}
# Four in five mobile-first users switch to desktop: sessions on mobile fall from
# about 49% to 17%, tablets stay at 17% (the population's other draws are unchanged).
MOBILE_CUT = {"mobile": 0.10, "desktop": 0.80, "tablet": 0.10}
AFFECTED = {"device", "is_mobile"}
# Shifted by how the test is built, not by the generator: every synthetic user joins on
# the history's first day, so tenure grows with the calendar, and one day of visits is
# all weekday while the reference mixes in weekends.
CALENDAR = {"tenure_days", "is_weekend"}


def _visits_and_monitor(
    flow: Flow, home: Path, device_shares: dict[str, float], sample_rate: float
) -> MonitoringRun:
    settings = flow.settings(
        generator={"users": FLOW_USERS, "days": FLOW_DAYS, "device_shares": device_shares},
        decisions={
            "database_url": f"sqlite:///{home / 'decisions.db'}",
            "feature_log_sample_rate": sample_rate,
        },
        # A loaded test machine must not time out reads: a vector without its values
        # would be missing-value drift the shift did not cause.
        serving={"feature_budget_ms": 10_000},
        monitoring={"window_hours": 24},
    )
    run_simulation(settings, "homepage_banner", DAY, days=1, visits_per_day=VISITS, seed=11)
    return run_monitor(settings, now=DAY + timedelta(days=1))


@pytest.fixture(scope="module")
def drift_runs(flow: Flow, tmp_path_factory) -> tuple[MonitoringRun, MonitoringRun, Path]:
    """Control and shifted runs, and the home whose decision database holds the shifted."""
    home = tmp_path_factory.mktemp("drift")
    control = _visits_and_monitor(flow, home / "control", SHIPPED, sample_rate=0.5)
    shifted = _visits_and_monitor(flow, home / "shifted", MOBILE_CUT, sample_rate=1.0)
    return control, shifted, home / "shifted"


def test_a_shifted_device_mix_is_an_alert_on_the_affected_inputs_only(flow, drift_runs):
    model = load_artifact(flow.models_dir)
    control, shifted, _ = drift_runs

    # Every visit was scored; half of the control's vectors were sampled into the log.
    assert control.decisions == shifted.decisions == VISITS
    logged = control.details["inputs"]["is_mobile"]["values"]
    assert abs(logged - VISITS / 2) < 4 * (VISITS * 0.25) ** 0.5
    assert shifted.details["inputs"]["is_mobile"]["values"] == VISITS

    judged = set(model.features) | {"device", "country"}
    assert set(control.feature_psi) == set(shifted.feature_psi) == judged
    for name in AFFECTED:
        assert control.feature_psi[name] < 0.1, (name, control.feature_psi)
        assert shifted.feature_psi[name] >= 0.25, (name, shifted.feature_psi)
    # Frozen by the simulator: its visits send no browsing events, so the live session
    # state stays as the history left it (materialized from the replayed log) while the
    # reference saw each session start after that user's real previous events.
    assert judged >= SESSION_FEATURES
    untouched = judged - AFFECTED - CALENDAR - SESSION_FEATURES
    assert {n: v for n, v in shifted.feature_psi.items() if n in untouched and v >= 0.1} == {}
    assert shifted.status == "alert"
    assert {f"feature_psi_alert:{name}" for name in AFFECTED} <= set(shifted.reasons)
    print(  # the figures the test judged, for the record
        "PSI control/shifted:",
        {
            n: (round(control.feature_psi[n], 4), round(v, 4))
            for n, v in shifted.feature_psi.items()
        },
        "score:",
        control.score_psi,
        shifted.score_psi,
    )


def test_the_alert_triggers_a_retrain_and_a_worse_challenger_is_not_promoted(flow, drift_runs):
    """`retraining.trigger: on_alert`: the shifted run's alert is the reason to train; the
    challenger (a one-split stump) loses to the champion and is kept, not promoted."""
    _, shifted, home = drift_runs
    models = home / "models"
    shutil.copytree(flow.models_dir, models, symlinks=True)
    champion = os.readlink(models / LATEST)
    env = flow.env | {
        "TAILOR_MODELS_DIR": str(models),
        "TAILOR_DECISIONS__DATABASE_URL": f"sqlite:///{home / 'decisions.db'}",
        "TAILOR_RETRAINING__TRIGGER": "on_alert",
        "TAILOR_TRAINING__NUM_LEAVES": "2",
        "TAILOR_TRAINING__NUM_BOOST_ROUND": "1",
        "TAILOR_TRAINING__TUNING_TRIALS": "0",  # a search would repair the stump
    }
    quiet = env | {"TAILOR_DECISIONS__DATABASE_URL": f"sqlite:///{home / 'quiet.db'}"}
    skipped = run_tailor(quiet, "retrain", "--by", "test")
    assert skipped.returncode == 0 and "skipped" in skipped.stdout, skipped.stdout
    assert [entry.action for entry in ledger(models)] == [e.action for e in ledger(flow.models_dir)]

    result = run_tailor(env, "retrain", "--by", "test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not promoted" in result.stdout, result.stdout
    assert os.readlink(models / LATEST) == champion
    rejected = ledger(models)[-1]
    assert (rejected.action, rejected.previous, rejected.actor) == ("reject", champion, "test")
    assert f"monitoring alerted on {champion}" in rejected.reason
    assert "feature_psi_alert:is_mobile" in rejected.reason
    assert shifted.status == "alert"
    verdict = rejected.evidence
    assert verdict["challenger"]["auc"] < verdict["champion"]["auc"]


def _runs(flow: Flow, limit: int) -> list[MonitoringRun]:
    database = open_database(flow.settings().decision_database_url)
    try:
        with database.connect() as connection:
            return recent_runs(connection, limit)
    finally:
        database.dispose()


GAUGES = ("tailor_feature_psi", "tailor_score_psi", "tailor_model_auc_live", "tailor_monitoring")


def _gauges(api) -> dict[str, dict[tuple, float]]:
    with api.client() as client:
        text = client.get("/metrics/").text
    return {
        family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        for family in text_string_to_metric_families(text)
        if family.name.startswith(GAUGES)
    }


def test_tailor_monitor_stores_a_run_that_the_api_shows(flow, api):
    """On the flow's simulated week, whose decisions logged their feature vectors."""
    result = run_tailor(flow.env, "monitor")
    stored = re.search(r"run ([0-9a-f]{32}) stored", result.stdout)
    assert stored, result.stdout + result.stderr
    (latest,) = _runs(flow, 1)
    assert latest.run_id == stored[1]
    assert result.returncode == EXIT_CODES[latest.status], result.stdout
    assert latest.status.upper() in result.stdout
    assert latest.decisions > 1000 and latest.score_psi is not None
    assert latest.model_version == load_artifact(flow.models_dir).version

    with api.client() as client:
        body = client.get("/v1/monitoring", params={"runs": 100}).json()
        refused = client.get("/v1/monitoring", params={"runs": 0})
    assert body["runs"][0]["run_id"] == latest.run_id
    assert body["runs"][0]["feature_psi"] == latest.feature_psi
    assert refused.status_code == 422

    def shown() -> bool:
        gauges = _gauges(api)
        return gauges.get("tailor_score_psi", {}).get(()) == pytest.approx(latest.score_psi)

    wait_for(shown, "the API's gauges to show the latest run")
    gauges = _gauges(api)
    assert gauges["tailor_feature_psi"] == {
        (("feature", name),): pytest.approx(value) for name, value in latest.feature_psi.items()
    }
    assert gauges["tailor_monitoring_status"][()] == ("ok", "warn", "alert").index(latest.status)
    assert gauges["tailor_monitoring_read_ok"][()] == 1.0
    if latest.auc_live is not None:
        assert gauges["tailor_model_auc_live"][()] == pytest.approx(latest.auc_live)


def test_tailor_monitor_every_runs_until_stopped(flow, tmp_path):
    database_url = f"sqlite:///{tmp_path / 'decisions.db'}"
    env = flow.env | {"TAILOR_DECISIONS__DATABASE_URL": database_url}
    process = subprocess.Popen(
        [str(TAILOR), "monitor", "--every", "1s"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    database = open_database(database_url)

    def stored() -> int:
        with database.connect() as connection:
            return connection.execute(select(func.count()).select_from(monitoring_runs)).scalar()

    try:
        wait_for(lambda: stored() >= 2, "two scheduled monitoring runs", seconds=120)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
        database.dispose()
    assert process.returncode == 0, output
    assert "monitoring on schedule 1s" in output and output.count(" stored in ") >= 2
