"""The latest monitoring run as gauges: read from the decision database on the
collector's own schedule, never on a scrape; a failing database keeps the last values
and says so, and never breaks the exposition."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from serving.monitoring_gauges import MonitoringGauges
from tailor.core.database.engine import database_engine, open_database
from tailor.core.monitoring_run import MonitoringRun, save_run

MOMENT = datetime(2026, 3, 4, 10, tzinfo=UTC)


def _run(score_psi: float) -> MonitoringRun:
    return MonitoringRun(
        run_id="a" * 32,
        started_at=MOMENT,
        model_version="v1",
        status="warn",
        reasons=["feature_psi_warn:is_mobile"],
        window_start=MOMENT,
        window_end=MOMENT,
        decisions=900,
        score_psi=score_psi,
        max_feature_psi=0.12,
        max_feature="is_mobile",
        feature_psi={"is_mobile": 0.12, "device": 0.05},
        performance_start=MOMENT,
        performance_end=MOMENT,
        outcome_decisions=800,
        conversions=40,
        auc_live=0.71,
        ece_live=0.01,
        observed_expected=0.98,
        conversion_changes=0,
        last_change_at=None,
        details={},
        seconds=0.5,
    )


def _scrape(gauges: MonitoringGauges) -> dict[str, dict[tuple, float]]:
    registry = CollectorRegistry()
    registry.register(gauges)
    exposition = generate_latest(registry).decode()
    return {
        family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        for family in text_string_to_metric_families(exposition)
    }


def test_the_gauges_show_the_latest_run_and_keep_it_while_the_database_fails(tmp_path):
    database = open_database(f"sqlite:///{tmp_path / 'decisions.db'}")
    with database.begin() as connection:
        save_run(connection, _run(score_psi=0.03))
    gauges = MonitoringGauges(database, refresh_seconds=60)
    assert _scrape(gauges)["tailor_monitoring_read_ok"] == {(): 0.0}  # not read yet

    gauges.refresh()
    shown = _scrape(gauges)
    assert shown["tailor_feature_psi"] == {
        (("feature", "device"),): 0.05,
        (("feature", "is_mobile"),): 0.12,
    }
    assert shown["tailor_score_psi"] == {(): 0.03}
    assert shown["tailor_model_auc_live"] == {(): 0.71}
    assert shown["tailor_monitoring_status"] == {(): 1.0}
    assert shown["tailor_monitoring_last_run_timestamp_seconds"] == {(): MOMENT.timestamp()}
    assert shown["tailor_monitoring_read_ok"] == {(): 1.0}

    with database.begin() as connection:
        connection.execute(text("DROP TABLE tailor_monitoring_runs"))
    gauges.refresh()
    failed = _scrape(gauges)
    assert failed["tailor_score_psi"] == {(): 0.03}
    assert failed["tailor_monitoring_read_ok"] == {(): 0.0}
    database.dispose()


def test_an_unreachable_database_gives_no_values_and_a_flag(tmp_path):
    database = database_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'decisions.db'}")
    gauges = MonitoringGauges(database, refresh_seconds=0.05)
    gauges.start()
    gauges.close()  # the thread's first read has failed by now
    shown = _scrape(gauges)
    assert shown["tailor_monitoring_read_ok"] == {(): 0.0}
    assert shown["tailor_score_psi"] == {} and shown["tailor_feature_psi"] == {}
