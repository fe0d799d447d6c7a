"""The decision log on real SQLite and PostgreSQL, including a database that is down."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, event, func, make_url, select

from serving.persistence.decision_log import DecisionLog, DecisionLogUnavailable
from serving.persistence.durable_writer import WriterOptions
from tailor.core.database.engine import database_engine, open_database
from tailor.core.database.schema import decisions
from tailor.core.decision_record import DecisionRecord
from tests.support.databases import emptied
from tests.support.services import free_port, scratch_database
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def down_engine() -> Iterator[Engine]:
    """PostgreSQL on a port nobody listens on: every connection is refused."""
    engine = database_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    yield engine
    engine.dispose()


def _record(user_id: int, **overrides) -> DecisionRecord:
    values = {
        "decision_id": uuid.uuid4().hex,
        "created_at": datetime(2026, 3, 4, 10, tzinfo=UTC),
        "user_id": user_id,
        "placement": "homepage_banner",
        "variant_id": "electronics",
        "config_version": "cfg-1",
        "model_version": None,
        "degraded": ["feature_store_timeout"],
        "request": {"user_id": user_id, "context": {"device": "mobile"}},
        "decision": {"variant": {"id": "electronics"}, "score": 0.5},
    }
    return DecisionRecord(**values | overrides)


def _log(engine: Engine, spill_dir: Path, **overrides) -> DecisionLog:
    options = {"flush_seconds": 0.05, "batch_size": 50, "queue_max": 10_000} | overrides
    return DecisionLog(engine, WriterOptions(spill_dir=spill_dir, **options))


def _stored(engine: Engine, records: list[DecisionRecord]) -> int:
    ids = [record.decision_id for record in records]
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).where(decisions.c.decision_id.in_(ids))
        ).scalar_one()


def _metric(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_decision_is_the_same_from_the_buffer_and_from_the_database(engine, tmp_path):
    log = _log(engine, tmp_path, flush_seconds=60, batch_size=1000)
    try:
        records = [_record(user_id) for user_id in (1, 2, 3)]
        for record in records:
            log.record(record)
        assert log.backlog == 3
        buffered = [log.get(record.decision_id) for record in records]
        assert log.flush()
        assert log.backlog == 0
        assert [log.get(record.decision_id) for record in records] == buffered
    finally:
        log.close()
    assert buffered == records  # the same record, not a copy that lost a field
    assert log.get(uuid.uuid4().hex) is None


def test_many_decisions_are_written_in_batches(engine, tmp_path):
    inserts: list[str] = []

    def count_inserts(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("INSERT INTO tailor_decisions"):
            inserts.append(statement)

    event.listen(engine, "before_cursor_execute", count_inserts)
    written_before = _metric("tailor_log_written_total", {"log": "decisions"})
    log = _log(engine, tmp_path, flush_seconds=60, batch_size=50)
    try:
        records = [_record(user_id) for user_id in range(1234)]
        for record in records:
            log.record(record)
        assert log.flush()
    finally:
        log.close()
    assert _stored(engine, records) == 1234
    assert len(inserts) == 25  # ceil(1234 / 50) statements, none row by row
    assert _metric("tailor_log_written_total", {"log": "decisions"}) - written_before == 1234


def _spilled_ids(spill_dir: Path) -> list[str]:
    spill_files = sorted(spill_dir.glob("decisions-*.jsonl"))
    lines = [line for path in spill_files for line in path.read_text().splitlines()]
    return sorted(json.loads(line)["decision_id"] for line in lines)


def test_nothing_is_lost_while_the_database_is_down(engine, down_engine, tmp_path):
    spilled_before = _metric("tailor_log_spilled_total", {"log": "decisions"})
    log = _log(down_engine, tmp_path, batch_size=10, queue_max=10_000)
    records = [_record(user_id) for user_id in range(100)]
    log.record(records[0])
    wait_for(lambda: log.failing, "the first write to fail")
    for record in records[1:]:
        log.record(record)
    # Far below queue_max, yet on disk within a flush interval: with the database down
    # the buffer is what a crash would lose, so it is not kept.
    wait_for(lambda: log.backlog == 0, "the buffer to move to the spill")
    with pytest.raises(DecisionLogUnavailable):
        log.get(records[-1].decision_id)  # spilled, and the database is down
    assert log.spilled().files == 1 and log.spilled().bytes > 0
    # Read before close: this is what a kill -9 at this moment would leave.
    assert _spilled_ids(tmp_path) == sorted(record.decision_id for record in records)
    assert not log.flush(timeout=0.2)
    log.close()
    assert _spilled_ids(tmp_path) == sorted(record.decision_id for record in records)
    assert _metric("tailor_log_spilled_total", {"log": "decisions"}) - spilled_before == 100

    replayer = _log(engine, tmp_path)
    try:
        assert replayer.flush()
    finally:
        replayer.close()
    assert _stored(engine, records) == 100
    assert all(replayer.get(record.decision_id) is not None for record in records)
    assert list(tmp_path.glob("decisions-*.jsonl")) == []


def test_a_torn_spill_line_is_skipped_with_a_warning(engine, down_engine, tmp_path, caplog):
    log = _log(down_engine, tmp_path)
    records = [_record(user_id) for user_id in range(5)]
    for record in records:
        log.record(record)
    log.close()  # nothing reaches the database: all five are spilled to one file
    (spill_file,) = tmp_path.glob("decisions-*.jsonl")
    content = spill_file.read_bytes()
    spill_file.write_bytes(content[:-20])  # a crash in the middle of the last line

    with caplog.at_level(logging.WARNING, logger="serving.persistence.decision_log"):
        replayer = _log(engine, tmp_path)
        try:
            assert replayer.flush()
        finally:
            replayer.close()
    assert _stored(engine, records[:4]) == 4
    assert replayer.get(records[4].decision_id) is None
    assert any("line 5" in message for message in caplog.messages)
    assert not spill_file.exists()


def test_a_decision_the_database_refuses_is_set_aside(engine, tmp_path):
    good = [_record(user_id) for user_id in range(3)]
    bad = _record(99, request={"tags": {"not", "json"}})  # a set does not serialise
    log = _log(engine, tmp_path)
    try:
        for record in [good[0], bad, *good[1:]]:
            log.record(record)
        assert log.flush()
    finally:
        log.close()
    assert _stored(engine, good) == 3
    assert log.get(bad.decision_id) is None
    (rejected,) = tmp_path.glob("rejected-decisions-*.jsonl")
    assert json.loads(rejected.read_text())["record"]["decision_id"] == bad.decision_id


def test_the_log_creates_the_tables_when_the_service_started_without_them(
    engine, database_url, tmp_path
):
    emptied(engine)  # as if the database came up empty after the service
    late_engine = database_engine(database_url)
    log = _log(late_engine, tmp_path)
    try:
        record = _record(1)
        log.record(record)
        assert log.flush()
    finally:
        log.close()
        late_engine.dispose()
    assert _stored(engine, [record]) == 1


def test_a_write_that_hangs_counts_as_failing_and_the_buffer_spills(tmp_path):
    """PostgreSQL's driver has no read timeout: a frozen server holds a write forever,
    and without the stall guard every decision since would wait in memory."""
    with scratch_database() as url:
        address = make_url(url)
        proxy = TcpProxy((address.host, address.port))
        engine = open_database(address.set(port=proxy.port).render_as_string(False))
        log = _log(engine, tmp_path, flush_seconds=0.05, stall_seconds=0.5)
        records = [_record(user_id) for user_id in range(60)]
        try:
            log.record(records[0])
            assert log.flush()  # a pooled connection, then the freeze
            proxy.freeze()
            for record in records[1:]:
                log.record(record)
            wait_for(lambda: log.failing and log.backlog == 0, "the hung write's buffer to spill")
            # Read while the write still hangs: what a kill -9 now would leave on disk.
            assert set(_spilled_ids(tmp_path)) >= {r.decision_id for r in records[2:]}
            proxy.thaw()
            assert log.flush(timeout=30)
            assert not log.failing
        finally:
            proxy.thaw()
            log.close()
            proxy.cut()
        engine.dispose()
        direct = open_database(url)
        try:
            assert _stored(direct, records) == 60  # the spill replayed, each once
        finally:
            direct.dispose()
