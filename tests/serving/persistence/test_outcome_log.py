"""The outcome log against real databases: attribution windows, reasons for what it
drops, exactly-once by outcome id, and no outcome lost while the database is down."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, insert, select

from serving.persistence.durable_writer import WriterOptions
from serving.persistence.outcome_log import OutcomeLog
from tailor.core.database.engine import database_engine, open_database
from tailor.core.database.schema import decisions, outcomes
from tailor.core.outcome import Outcome
from tailor.core.settings import OutcomeSettings
from tests.support.services import free_port
from tests.support.waiting import wait_for

DECIDED = datetime(2026, 3, 4, 10, tzinfo=UTC)
SETTINGS = OutcomeSettings(unknown_decision_grace_seconds=0.5)


def _writer(spill_dir) -> WriterOptions:
    return WriterOptions(spill_dir=spill_dir, flush_seconds=0.05)


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


def _decision(engine: Engine, decision_id: str, at: datetime = DECIDED) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(decisions),
            {
                "decision_id": decision_id,
                "created_at": at,
                "user_id": 7,
                "placement": "homepage_banner",
                "variant_id": "welcome",
                "degraded": [],
                "request": {},
                "decision": {},
                "action_probability": 1.0,
            },
        )


def _outcome(outcome_id: str, decision_id: str, kind: str, after: timedelta, value=None):
    return Outcome(
        outcome_id=outcome_id, decision_id=decision_id, type=kind, value=value, ts=DECIDED + after
    )


def _stored(engine: Engine, decision_id: str) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(outcomes.c.outcome_id, outcomes.c.type)
            .where(outcomes.c.decision_id == decision_id)
            .order_by(outcomes.c.outcome_id)
        ).all()
    return [tuple(row) for row in rows]


def _dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("tailor_outcomes_dropped_total", {"reason": reason}) or 0.0


def test_outcomes_count_inside_their_window_and_the_rest_by_reason(engine, tmp_path):
    decision = f"d-window-{tmp_path.name}"[:32]
    _decision(engine, decision)
    before = {r: _dropped(r) for r in ("outside_window", "before_decision", "unknown_decision")}
    log = OutcomeLog(engine, SETTINGS, _writer(tmp_path))
    try:
        for outcome in (
            _outcome("seen", decision, "impression", timedelta(seconds=2)),
            _outcome("click", decision, "click", timedelta(minutes=59)),
            _outcome("late-click", decision, "click", timedelta(minutes=61)),
            _outcome("bought", decision, "conversion", timedelta(hours=23), value=42.0),
            _outcome("too-late", decision, "conversion", timedelta(hours=25), value=1.0),
            _outcome("before", decision, "impression", timedelta(minutes=-5)),
            _outcome("nobody", "no-such-decision", "click", timedelta(seconds=1)),
        ):
            log.record(outcome)
        assert log.flush()
        assert log.backlog == 1  # the unknown decision waits out its grace
        wait_for(lambda: log.flush(timeout=0.2) and log.backlog == 0, "the grace to pass")
    finally:
        log.close()
    assert _stored(engine, decision) == [
        ("bought", "conversion"),
        ("click", "click"),
        ("seen", "impression"),
    ]
    assert _dropped("outside_window") - before["outside_window"] == 2
    assert _dropped("before_decision") - before["before_decision"] == 1
    assert _dropped("unknown_decision") - before["unknown_decision"] == 1


def test_an_outcome_waits_for_a_decision_another_replica_has_not_written_yet(engine, tmp_path):
    decision = f"d-late-{tmp_path.name}"[:32]
    patient = SETTINGS.model_copy(update={"unknown_decision_grace_seconds": 30})
    log = OutcomeLog(engine, patient, _writer(tmp_path))
    try:
        log.record(_outcome("early", decision, "click", timedelta(seconds=3)))
        assert log.flush() and log.backlog == 1
        _decision(engine, decision)
        log.flush()
        assert log.flush() and log.backlog == 0
    finally:
        log.close()
    assert _stored(engine, decision) == [("early", "click")]


def test_an_outcome_id_counts_once_however_often_it_is_sent(engine, tmp_path):
    decision = f"d-once-{tmp_path.name}"[:32]
    _decision(engine, decision)
    for attempt in range(3):  # three processes, as a client's retries could reach
        log = OutcomeLog(engine, SETTINGS, _writer(tmp_path / str(attempt)))
        try:
            log.record(_outcome("retried", decision, "click", timedelta(seconds=5)))
            log.record(_outcome("retried", decision, "click", timedelta(seconds=5)))
            assert log.flush()
        finally:
            log.close()
    assert _stored(engine, decision) == [("retried", "click")]


def test_outcomes_sent_while_the_database_is_down_land_when_it_is_back(engine, tmp_path):
    decision = f"d-down-{tmp_path.name}"[:32]
    _decision(engine, decision)
    down = database_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    log = OutcomeLog(down, SETTINGS, _writer(tmp_path))
    try:
        for n in range(250):
            log.record(_outcome(f"o{n}", decision, "impression", timedelta(seconds=n)))
        assert not log.flush(timeout=0.2)
    finally:
        log.close()  # the database never answered: all of them spill to disk
        down.dispose()
    assert _stored(engine, decision) == []
    replayer = OutcomeLog(engine, SETTINGS, _writer(tmp_path))
    try:
        assert replayer.flush()
    finally:
        replayer.close()
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count()).where(outcomes.c.decision_id == decision)
        ).scalar_one()
    assert count == 250
    assert list(tmp_path.glob("outcomes-*.jsonl")) == []
