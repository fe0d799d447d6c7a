"""Triggers that fire while the outbox database is down wait on disk and reach the
outbox once, on real SQLite and PostgreSQL and a PostgreSQL port nobody listens on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, make_url, select

from serving.decision.ports import Trigger
from serving.persistence.outbox import Outbox
from serving.persistence.trigger_spool import TriggerSpool
from tailor.core.database.engine import database_engine, open_database
from tailor.core.database.schema import trigger_outbox
from tests.support.services import free_port, scratch_database
from tests.support.tcp_proxy import TcpProxy

SPOOL_PATTERN = "triggers-*.jsonl"
BUDGET = 30.0  # seconds an insert may take: generous where the database is up or refusing

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
    spool = TriggerSpool(Outbox(engine, None), tmp_path, BUDGET)
    enqueued = spool.record(_trigger(1))
    assert enqueued is not None and enqueued.created
    assert list(tmp_path.glob(SPOOL_PATTERN)) == []


def test_spooled_triggers_reach_the_outbox_once(engine, down_outbox, tmp_path):
    down = TriggerSpool(down_outbox, tmp_path, BUDGET)
    assert down.record(_trigger(1)) is None
    assert down.record(_trigger(2)) is None
    assert down.record(_trigger(1)) is None  # fired again in the same window
    assert down.replay() == 0  # still down: nothing moves, nothing is lost
    down.close()
    assert len(list(tmp_path.glob(SPOOL_PATTERN))) == 1

    back = TriggerSpool(Outbox(engine, None), tmp_path, BUDGET)  # e.g. the next process
    assert back.replay() == 2
    assert _rows(engine) == [1, 2]
    assert list(tmp_path.glob(SPOOL_PATTERN)) == []
    assert back.replay() == 0
    assert _rows(engine) == [1, 2]


def test_a_torn_last_line_is_skipped_and_the_rest_recorded(engine, down_outbox, tmp_path):
    down = TriggerSpool(down_outbox, tmp_path, BUDGET)
    down.record(_trigger(1))
    down.close()
    [path] = tmp_path.glob(SPOOL_PATTERN)
    with path.open("a") as handle:
        handle.write('{"user_id": 2, "placem')  # a crash mid-write
    assert TriggerSpool(Outbox(engine, None), tmp_path, BUDGET).replay() == 1
    assert _rows(engine) == [1]


def test_a_file_another_process_is_writing_is_left_alone(engine, down_outbox, tmp_path: Path):
    writer = TriggerSpool(down_outbox, tmp_path, BUDGET)
    writer.record(_trigger(1))  # holds its file's lock while it may append
    assert TriggerSpool(Outbox(engine, None), tmp_path, BUDGET).replay() == 0
    assert _rows(engine) == []
    writer.close()
    assert TriggerSpool(Outbox(engine, None), tmp_path, BUDGET).replay() == 1
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(trigger_outbox)).scalar() == 1


def test_a_frozen_outbox_spools_the_trigger_within_the_budget(tmp_path):
    """The insert runs on the request path; a frozen database must cost the budget, and
    an insert that completes after the request gave up on it still counts once."""
    with scratch_database() as url:
        address = make_url(url)
        proxy = TcpProxy((address.host, address.port))
        engine = open_database(address.set(port=proxy.port).render_as_string(False))
        spool = TriggerSpool(Outbox(engine, None), tmp_path, 0.2)
        try:
            assert spool.record(_trigger(1)).created  # connected: a pooled connection
            proxy.freeze()
            assert spool.record(_trigger(2)) is None  # spooled, not waited for
            assert len(list(tmp_path.glob(SPOOL_PATTERN))) == 1
            proxy.thaw()
            spool.replay()  # whether or not the late insert landed first
        finally:
            proxy.thaw()
            spool.close()
            engine.dispose()
            proxy.cut()
        direct = open_database(url)
        try:
            assert _rows(direct) == [1, 2]
        finally:
            direct.dispose()
