"""Every decision, kept in the decision database without slowing the request that made it.

`record` only puts the decision in an in-memory buffer; a writer thread commits it in
batches. While the database is down, batches stay in memory and are retried with
backoff, and beyond `queue_max` the oldest go to JSON Lines spill files, replayed (and
only then deleted) when the database answers again or the next process starts. Replays
may repeat rows a crash left half-committed: inserts skip existing ids. A row the
database rejects on its own merits (unserialisable, too long) is set aside in a
`rejected-*.jsonl` file instead of blocking every row queued behind it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

from prometheus_client import Counter, Gauge
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from serving.persistence.jsonl_spool import JsonlSpool, parsed_lines
from tailor.core.database.engine import insert_ignoring_conflicts, is_unavailable
from tailor.core.database.migrations import SchemaOutOfDate, prepare_schema
from tailor.core.database.schema import decisions
from tailor.core.decision_record import DecisionRecord

log = logging.getLogger(__name__)

BACKLOG = Gauge("tailor_decision_log_backlog", "Decisions recorded but not yet committed")
WRITTEN = Counter("tailor_decision_log_written", "Decisions committed, replays included")
SPILLED = Counter("tailor_decision_log_spilled", "Decisions spilled to disk past queue_max")
WRITE_ERRORS = Counter("tailor_decision_log_write_errors", "Failed batch writes (retried)")
REJECTED = Counter("tailor_decision_log_rejected", "Decisions the database refused outright")

MAX_RETRY_SECONDS = 30.0


class DecisionLogUnavailable(RuntimeError):
    """The database cannot be read and the decision is not in this process's buffer."""


class _SpillFiles:
    """This process's spill file, the replay of everyone's (see `JsonlSpool`), and the
    file of rows the database refused outright, which is never replayed."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._spool = JsonlSpool(directory, "decisions")

    def append(self, lines: list[str]) -> None:
        self._spool.append(lines)

    def release(self) -> None:
        """Close this process's file, which makes it replayable."""
        self._spool.release()

    def reject(self, record: DecisionRecord, error: Exception) -> None:
        line = json.dumps({"error": str(error), "record": record.to_json_dict()}, default=str)
        with (self._directory / f"rejected-{os.getpid()}.jsonl").open("a") as handle:
            handle.write(line + "\n")

    def replay(self, commit: Callable[[list[DecisionRecord]], None], batch_size: int) -> None:
        """Commit every unlocked spill file in batches, deleting each once committed;
        a database error propagates and leaves the current file for the next replay."""
        for path, handle in self._spool.replayable():
            records = parsed_lines(
                path, handle, lambda line: DecisionRecord.from_json_dict(json.loads(line))
            )
            while batch := list(islice(records, batch_size)):
                commit(batch)
            path.unlink()
            log.info("replayed spill file %s", path.name)


class DecisionLog:
    def __init__(
        self,
        engine: Engine,
        *,
        flush_seconds: float,
        batch_size: int,
        queue_max: int,
        spill_dir: Path,
        auto_migrate: bool = True,
    ) -> None:
        self._engine = engine
        self._auto_migrate = auto_migrate
        self._insert = insert_ignoring_conflicts(engine, decisions)
        self._flush_seconds = flush_seconds
        self._batch_size = batch_size
        self._queue_max = queue_max
        self._spill = _SpillFiles(spill_dir)
        # decision_id -> (sequence, record), oldest first: both the write queue and
        # the lookup index for decisions not yet in the database.
        self._pending: dict[str, tuple[int, DecisionRecord]] = {}
        self._sequence = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits on it
        self._progress = threading.Condition(self._lock)  # flush() waits on it
        self._flush_wanted = False
        self._stopping = False
        self._closed = False
        self._replay_due = True  # files left by earlier runs
        # The service may have started while the database was down, before its schema
        # was prepared.
        self._schema_ready = False
        self._failing = False
        self._retry_delay = flush_seconds
        self._next_attempt = time.monotonic()
        BACKLOG.set_function(lambda: self.backlog)
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def record(self, record: DecisionRecord) -> None:
        with self._lock:
            if self._closed:
                self._spill_records([record])
                return
            self._sequence += 1
            self._pending[record.decision_id] = (self._sequence, record)
            size = len(self._pending)
            if size == self._batch_size or size == self._queue_max + 1:
                self._wake.notify()

    def get(self, decision_id: str) -> DecisionRecord | None:
        with self._lock:
            buffered = self._pending.get(decision_id)
        if buffered is not None:
            return buffered[1]
        try:
            with self._engine.connect() as connection:
                row = connection.execute(
                    select(decisions).where(decisions.c.decision_id == decision_id)
                ).one_or_none()
        except SQLAlchemyError as error:
            raise DecisionLogUnavailable(f"decision log unreachable: {error}") from error
        return None if row is None else DecisionRecord(**row._mapping)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything recorded before the call, and every spill file this log
        can replay, is committed; False if that did not happen within `timeout`."""
        with self._lock:
            target = self._sequence
            self._flush_wanted = True
            self._wake.notify()
            return self._progress.wait_for(lambda: self._flushed(target), timeout)

    def _flushed(self, target: int) -> bool:
        oldest = next(iter(self._pending.values()), None)
        return (oldest is None or oldest[0] > target) and not self._replay_due

    def close(self) -> None:
        """Commit what the database takes now, spill the rest, stop the writer."""
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._wake.wait_for(self._ready, max(0.0, self._next_attempt - time.monotonic()))
                stopping = self._stopping
                overflow = len(self._pending) > self._queue_max
                due = time.monotonic() >= self._next_attempt or (
                    not self._failing and (self._flush_wanted or self._full())
                )
                self._flush_wanted = False
            if overflow:
                # Down to half, so a long outage spills in chunks, not a line a request.
                self._spill_oldest(len(self._pending) - self._queue_max // 2)
            if stopping:
                self._drain()
                return
            if due:
                self._attempt()
            with self._lock:
                self._progress.notify_all()

    def _ready(self) -> bool:
        if self._stopping or len(self._pending) > self._queue_max:
            return True
        if time.monotonic() >= self._next_attempt:
            return True
        return not self._failing and (self._flush_wanted or self._full())

    def _full(self) -> bool:
        return len(self._pending) >= self._batch_size

    def _attempt(self) -> None:
        """One pass: the batches queued now, then any due replay; backs off on failure."""
        try:
            if not self._schema_ready:
                prepare_schema(self._engine, self._auto_migrate)
                self._schema_ready = True
            for _ in range(-(-len(self._pending) // self._batch_size)):
                with self._lock:
                    batch = [r for _, r in islice(self._pending.values(), self._batch_size)]
                self._commit(batch)
                with self._lock:
                    for record in batch:
                        self._pending.pop(record.decision_id, None)
            if self._replay_due:
                with self._engine.connect():  # still down: keep appending to our file
                    pass
                self._spill.release()
                self._spill.replay(self._commit, self._batch_size)
                self._replay_due = False
        # OSError: a spill file; SchemaOutOfDate: an operator must migrate, then it writes.
        except (SQLAlchemyError, OSError, SchemaOutOfDate) as error:
            WRITE_ERRORS.inc()
            log.warning(
                "decision log cannot write (%s); %d buffered, retrying in %.1f s",
                error.__cause__ or error,
                len(self._pending),
                self._retry_delay,
            )
            self._failing = True
            self._next_attempt = time.monotonic() + self._retry_delay
            self._retry_delay = min(self._retry_delay * 2, MAX_RETRY_SECONDS)
            return
        self._failing = False
        self._retry_delay = self._flush_seconds
        self._next_attempt = time.monotonic() + self._flush_seconds

    def _commit(self, batch: list[DecisionRecord]) -> None:
        """Insert `batch`; if the database refuses a statement (not an outage), insert
        row by row and set aside the rows it refuses."""
        try:
            with self._engine.begin() as connection:
                connection.execute(self._insert, [vars(record) for record in batch])
        # Not only SQLAlchemyError: psycopg's multi-row insert lets a serialisation
        # TypeError through unwrapped, where SQLite's path wraps it.
        except Exception as error:
            if isinstance(error, SQLAlchemyError) and is_unavailable(error):
                raise
            if len(batch) > 1:
                for record in batch:
                    self._commit([record])
                return
            REJECTED.inc()
            log.error("decision %s rejected by the database: %s", batch[0].decision_id, error)
            self._spill.reject(batch[0], error)
            return
        WRITTEN.inc(len(batch))

    def _spill_oldest(self, count: int) -> None:
        with self._lock:
            oldest = [r for _, r in islice(self._pending.values(), count)]
        if self._spill_records(oldest):
            with self._lock:
                for record in oldest:
                    self._pending.pop(record.decision_id, None)

    def _spill_records(self, records: list[DecisionRecord]) -> bool:
        """Append `records` to this process's spill file; False (and they stay where
        they are) when the disk refuses."""
        lines = []
        for record in records:
            try:
                lines.append(json.dumps(record.to_json_dict()) + "\n")
            except (TypeError, ValueError) as error:
                REJECTED.inc()
                self._spill.reject(record, error)
        try:
            self._spill.append(lines)
        except OSError as error:
            log.error("cannot spill %d decisions: %s; keeping them in memory", len(lines), error)
            return False
        SPILLED.inc(len(lines))
        self._replay_due = True
        return True

    def _drain(self) -> None:
        self._attempt()
        with self._lock:  # held while spilling: `record` spills itself once closed
            self._closed = True
            rest = [r for _, r in self._pending.values()]
            if rest and self._spill_records(rest):
                self._pending.clear()
            self._spill.release()
            self._progress.notify_all()
