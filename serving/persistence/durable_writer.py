"""Records kept in the decision database without slowing the request that made them.

`record` only puts a record in an in-memory buffer; a writer thread commits it in
batches every `flush_seconds`. Once a write has failed, the buffer goes to JSON Lines
spill files (fsynced) every `flush_seconds` instead of waiting in memory for the
database, so a crash during an outage loses at most the records of one flush interval
(plus the failed attempt's connect timeout); while the database is slow but answering,
only what exceeds `queue_max` spills. A write that hangs (a frozen server, a network
path that swallows packets: PostgreSQL's driver has no read timeout) counts as failing
once it has run `stall_seconds`: a guard thread then spills the buffer every flush
interval until the write returns. Spill files are replayed (and only then deleted)
when the database answers again or the next process starts. Replays
may repeat rows a crash left half-committed: writes skip existing keys. A row the
database rejects on its own merits (unserialisable, too long) is set aside in a
`rejected-*.jsonl` file instead of blocking every row queued behind it.

The decision log, the outcome log and the experiment assignments are such writers;
what differs between them (the key, the JSON form, how a batch is written) is a
`RecordKind`. A kind may hand records back from `write` to be tried again later (an
outcome whose decision another replica has not committed yet).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client import Counter, Gauge
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from serving.persistence.jsonl_spool import JsonlSpool, SpillBacklog, parsed_lines
from tailor.core.database.engine import is_unavailable
from tailor.core.database.migrations import SchemaOutOfDate, prepare_schema

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKLOG = Gauge("tailor_log_backlog", "Records accepted but not yet committed", ["log"])
WRITTEN = Counter("tailor_log_written", "Records committed, replays included", ["log"])
SPILLED = Counter("tailor_log_spilled", "Records spilled to disk past queue_max", ["log"])
WRITE_ERRORS = Counter("tailor_log_write_errors", "Failed batch writes (retried)", ["log"])
REJECTED = Counter("tailor_log_rejected", "Records the database refused outright", ["log"])

MAX_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class WriterOptions:
    """How a writer batches and where it spills: the same for every log of a process
    (settings `decisions.log_*`)."""

    spill_dir: Path
    flush_seconds: float = 0.2
    batch_size: int = 500
    queue_max: int = 100_000
    auto_migrate: bool = True
    stall_seconds: float = 2.0


class RecordKind(Protocol[T]):
    name: str  # names the spill files and labels the metrics

    def key(self, record: T) -> Hashable: ...

    def to_json(self, record: T) -> dict[str, Any]: ...

    def from_json(self, data: dict[str, Any]) -> T: ...

    def write(self, connection: Connection, batch: list[T]) -> list[T]:
        """Write the batch, skipping keys already stored; return the records that cannot
        be written yet and should be tried again at a later pass."""


class _SpillFiles:
    """This process's spill file, the replay of everyone's (see `JsonlSpool`), and the
    file of rows the database refused outright, which is never replayed."""

    def __init__(self, directory: Path, prefix: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._prefix = prefix
        self._spool = JsonlSpool(directory, prefix)

    def append(self, lines: list[str]) -> None:
        self._spool.append(lines)

    def release(self) -> None:
        """Close this process's file, which makes it replayable."""
        self._spool.release()

    def backlog(self) -> SpillBacklog:
        return self._spool.backlog()

    def reject(self, record: dict[str, Any], error: Exception) -> None:
        line = json.dumps({"error": str(error), "record": record}, default=str)
        path = self._directory / f"rejected-{self._prefix}-{os.getpid()}.jsonl"
        with path.open("a") as handle:
            handle.write(line + "\n")

    def replay(
        self,
        parse: Callable[[str], Any],
        commit: Callable[[list[Any]], None],
        batch_size: int,
    ) -> None:
        """Commit every unlocked spill file in batches, deleting each once committed;
        a database error propagates and leaves the current file for the next replay."""
        for path, handle in self._spool.replayable():
            records = parsed_lines(path, handle, parse)
            while batch := list(islice(records, batch_size)):
                commit(batch)
            path.unlink()
            log.info("replayed spill file %s", path.name)


class DurableWriter(Generic[T]):
    def __init__(self, engine: Engine, kind: RecordKind[T], options: WriterOptions) -> None:
        self._engine = engine
        self._kind = kind
        self._auto_migrate = options.auto_migrate
        self._flush_seconds = options.flush_seconds
        self._batch_size = options.batch_size
        self._queue_max = options.queue_max
        self._spill = _SpillFiles(options.spill_dir, kind.name)
        # key -> (sequence, record), oldest first: both the write queue and the lookup
        # index for records not yet in the database.
        self._pending: dict[Hashable, tuple[int, T]] = {}
        self._sequence = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits on it
        self._progress = threading.Condition(self._lock)  # flush() waits on it
        self._guard_wake = threading.Condition(self._lock)  # only close() wakes the guard
        self._flush_wanted = False
        self._stopping = False
        self._closed = False
        self._replay_due = True  # files left by earlier runs
        self._stall_seconds = options.stall_seconds
        self._attempt_since: float | None = None  # when the running write started
        self._spill_lock = threading.Lock()  # the writer and the stall guard both spill
        # The service may have started while the database was down, before its schema
        # was prepared.
        self._schema_ready = False
        self._failing = False
        self._retry_delay = options.flush_seconds
        self._next_attempt = time.monotonic()
        BACKLOG.labels(kind.name).set_function(lambda: self.backlog)
        self._written = WRITTEN.labels(kind.name)
        self._spilled = SPILLED.labels(kind.name)
        self._write_errors = WRITE_ERRORS.labels(kind.name)
        self._rejected = REJECTED.labels(kind.name)
        self._thread = threading.Thread(target=self._run, name=f"{kind.name}-log", daemon=True)
        self._thread.start()
        self._guard = threading.Thread(
            target=self._guard_stalls, name=f"{kind.name}-log-guard", daemon=True
        )
        self._guard.start()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    @property
    def failing(self) -> bool:
        """The last write failed, or the running one has hung past `stall_seconds`."""
        return self._failing or self._stalled()

    def _stalled(self) -> bool:
        since = self._attempt_since
        return since is not None and time.monotonic() - since > self._stall_seconds

    def _guard_stalls(self) -> None:
        """While a write hangs, the writer thread cannot spill: this thread does, each
        flush interval. A record spilled while its write is in flight may reach the
        database twice; writes skip existing keys."""
        while True:
            with self._lock:
                self._guard_wake.wait_for(lambda: self._stopping, self._flush_seconds)
                if self._stopping:
                    return
                stalled = self._stalled() and bool(self._pending)
            if stalled:
                self._spill_oldest(len(self._pending))

    def spilled(self) -> SpillBacklog:
        """What waits on disk for the database, this process's files and others'."""
        return self._spill.backlog()

    def record(self, record: T) -> None:
        with self._lock:
            if self._closed:
                self._spill_records([record])
                return
            self._enqueue(record)
            size = len(self._pending)
            if size == self._batch_size or size == self._queue_max + 1:
                self._wake.notify()

    def _enqueue(self, record: T) -> None:
        """At the back of the queue (a record handed back by `write` moves there)."""
        self._sequence += 1
        key = self._kind.key(record)
        self._pending.pop(key, None)
        self._pending[key] = (self._sequence, record)

    def pending(self, key: Hashable) -> T | None:
        """The record with `key` if it is still waiting to be written by this process."""
        with self._lock:
            buffered = self._pending.get(key)
        return None if buffered is None else buffered[1]

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything recorded before the call, and every spill file this
        writer can replay, has been through a write (committed, or handed back to wait);
        False if that did not happen within `timeout`."""
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
            self._guard_wake.notify()
        self._thread.join()
        self._guard.join()

    def _run(self) -> None:
        while True:
            with self._lock:
                wait = self._next_attempt - time.monotonic()
                if self._failing:  # wake each interval to move the buffer to disk
                    wait = min(wait, self._flush_seconds)
                self._wake.wait_for(self._ready, max(0.0, wait))
                stopping = self._stopping
                outage = self._failing and bool(self._pending)
                overflow = len(self._pending) > self._queue_max
                due = time.monotonic() >= self._next_attempt or (
                    not self._failing and (self._flush_wanted or self._full())
                )
                self._flush_wanted = False
            if outage:
                self._spill_oldest(len(self._pending))
            elif overflow:
                # Down to half, so a slow database spills in chunks, not a line a request.
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
        """One pass: the records queued now, then any due replay; backs off on failure."""
        self._attempt_since = time.monotonic()
        try:
            self._write_pass()
        # OSError: a spill file; SchemaOutOfDate: an operator must migrate, then it writes.
        except (SQLAlchemyError, OSError, SchemaOutOfDate) as error:
            self._write_errors.inc()
            log.warning(
                "%s log cannot write (%s); %d buffered, retrying in %.1f s",
                self._kind.name,
                error.__cause__ or error,
                len(self._pending),
                self._retry_delay,
            )
            self._failing = True
            self._next_attempt = time.monotonic() + self._retry_delay
            self._retry_delay = min(self._retry_delay * 2, MAX_RETRY_SECONDS)
            return
        finally:
            self._attempt_since = None
        self._failing = False
        self._retry_delay = self._flush_seconds
        self._next_attempt = time.monotonic() + self._flush_seconds

    def _write_pass(self) -> None:
        """The records queued now, then any due replay; a database error propagates."""
        if not self._schema_ready:
            prepare_schema(self._engine, self._auto_migrate)
            self._schema_ready = True
        with self._lock:
            queued = list(self._pending)
        for start in range(0, len(queued), self._batch_size):
            with self._lock:
                batch = [
                    self._pending[key][1]
                    for key in queued[start : start + self._batch_size]
                    if key in self._pending
                ]
            if not batch:  # the stall guard spilled them meanwhile
                continue
            later = self._commit(batch)
            with self._lock:
                for record in batch:
                    self._pending.pop(self._kind.key(record), None)
                for record in later:
                    self._enqueue(record)
        if self._replay_due:
            with self._engine.connect():  # still down: keep appending to our file
                pass
            with self._spill_lock:
                self._spill.release()
            self._spill.replay(self._parse, self._replay_batch, self._batch_size)
            self._replay_due = False

    def _parse(self, line: str) -> T:
        return self._kind.from_json(json.loads(line))

    def _replay_batch(self, batch: list[T]) -> None:
        """Replayed records that must wait join the in-memory queue."""
        later = self._commit(batch)
        with self._lock:
            for record in later:
                self._enqueue(record)

    def _commit(self, batch: list[T]) -> list[T]:
        """Write `batch`; if the database refuses a statement (not an outage), write row
        by row and set aside the rows it refuses. Returns the records to retry later."""
        try:
            with self._engine.begin() as connection:
                later = self._kind.write(connection, batch)
        # Not only SQLAlchemyError: psycopg's multi-row insert lets a serialisation
        # TypeError through unwrapped, where SQLite's path wraps it.
        except Exception as error:
            if isinstance(error, SQLAlchemyError) and is_unavailable(error):
                raise
            if len(batch) > 1:
                return [record for one in batch for record in self._commit([one])]
            self._rejected.inc()
            log.error("%s %s rejected by the database: %s", self._kind.name, batch[0], error)
            self._spill.reject(self._kind.to_json(batch[0]), error)
            return []
        self._written.inc(len(batch) - len(later))
        return later

    def _spill_oldest(self, count: int) -> None:
        with self._lock:
            oldest = [r for _, r in islice(self._pending.values(), count)]
        if self._spill_records(oldest):
            with self._lock:
                for record in oldest:
                    self._pending.pop(self._kind.key(record), None)

    def _spill_records(self, records: list[T]) -> bool:
        """Append `records` to this process's spill file; False (and they stay where
        they are) when the disk refuses."""
        lines = []
        for record in records:
            try:
                lines.append(json.dumps(self._kind.to_json(record)) + "\n")
            except (TypeError, ValueError) as error:
                self._rejected.inc()
                self._spill.reject({"unserialisable": repr(record)}, error)
        try:
            with self._spill_lock:
                self._spill.append(lines)
        except OSError as error:
            log.error(
                "cannot spill %d %s: %s; keeping them in memory",
                len(lines),
                self._kind.name,
                error,
            )
            return False
        self._spilled.inc(len(lines))
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
