"""Triggers that fire while the outbox database is down wait on disk and reach the
outbox once, on real SQLite and PostgreSQL and a PostgreSQL port nobody listens on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from serving.decision.ports import Trigger
from serving.persistence.outbox import Outbox
from serving.persistence.trigger_spool import TriggerSpool
from tailor.core.database.engine import database_engine
from tailor.core.database.schema import trigger_outbox
from tests.support.services import free_port

SPOOL_PATTERN = "triggers-*.jsonl"

WINDOW = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture
def engine(outbox_engine: Engine) -> Engine:
    return outbox_engine


@pytest.fixture
def down_outbox() -> Iterator[Outbox]:
    engine = database_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    yield Outbox(engine, default_webhook_url=None)
    engine.dispose()


def _trigger(user_id: int) -> Trigger:
    return Trigger(
        user_id=user_id,
        placement="homepage_banner",
        rule_id="cart_reminder_push",
        notification="cart_reminder_push",
        window_start=WINDOW,
        decision_id=uuid.uuid4().hex,
        payload={"channel": "push"},
        webhook_url=None,
    )


def _rows(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(trigger_outbox.c.user_id)).scalars())


def test_a_working_outbox_takes_the_trigger_directly(engine, tmp_path):
    spool = TriggerSpool(Outbox(engine, None), tmp_path)
    enqueued = spool.record(_trigger(1))
    assert enqueued is not None and enqueued.created
    assert list(tmp_path.glob(SPOOL_PATTERN)) == []


def test_spooled_triggers_reach_the_outbox_once(engine, down_outbox, tmp_path):
    down = TriggerSpool(down_outbox, tmp_path)
    assert down.record(_trigger(1)) is None
    assert down.record(_trigger(2)) is None
    assert down.record(_trigger(1)) is None  # fired again in the same window
    assert down.replay() == 0  # still down: nothing moves, nothing is lost
    down.close()
    assert len(list(tmp_path.glob(SPOOL_PATTERN))) == 1

    back = TriggerSpool(Outbox(engine, None), tmp_path)  # e.g. the next process
    assert back.replay() == 2
    assert _rows(engine) == [1, 2]
    assert list(tmp_path.glob(SPOOL_PATTERN)) == []
    assert back.replay() == 0
    assert _rows(engine) == [1, 2]


def test_a_torn_last_line_is_skipped_and_the_rest_recorded(engine, down_outbox, tmp_path):
    down = TriggerSpool(down_outbox, tmp_path)
    down.record(_trigger(1))
    down.close()
    [path] = tmp_path.glob(SPOOL_PATTERN)
    with path.open("a") as handle:
        handle.write('{"user_id": 2, "placem')  # a crash mid-write
    assert TriggerSpool(Outbox(engine, None), tmp_path).replay() == 1
    assert _rows(engine) == [1]


def test_a_file_another_process_is_writing_is_left_alone(engine, down_outbox, tmp_path: Path):
    writer = TriggerSpool(down_outbox, tmp_path)
    writer.record(_trigger(1))  # holds its file's lock while it may append
    assert TriggerSpool(Outbox(engine, None), tmp_path).replay() == 0
    assert _rows(engine) == []
    writer.close()
    assert TriggerSpool(Outbox(engine, None), tmp_path).replay() == 1
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(trigger_outbox)).scalar() == 1
