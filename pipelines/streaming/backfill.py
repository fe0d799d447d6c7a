"""History through the stream's own session logic, into the offline log training joins.

Stream workers log a session snapshot only for the events they are sent live, so a
history that arrives as files (generated or imported) would leave training with no
session values while serving has them: the model learns that they never matter. This
replays each user's history through the workers' own fold (`apply_new`, then
`session_features`), one event at a time with the clock at the event's own time: the
rows a worker would have logged had it processed every event the moment it happened.
A snapshot is thus dated at its event's instant (a tie moves on by a microsecond, as
`mark_changed` does live), and Feast joins it to every observation at or after it.

Every run replaces one part of the log, `part-history.parquet`, whole: a rerun never
duplicates a row and never touches the parts the workers wrote.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, NamedTuple

import duckdb
import pyarrow as pa

from pipelines.streaming.feature_push import SESSION_LOG_SCHEMA, write_part
from pipelines.streaming.session_state import new_state, session_features
from pipelines.streaming.state_store import apply_new
from tailor.core.clock import ManualClock
from tailor.core.events import EARLIEST, Event
from tailor.core.settings import TailorSettings

HISTORY_PART: Final = "part-history.parquet"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK_ROWS: Final = 50_000  # rows held as Python dicts before they become Arrow columns

# dbt's typed, deduplicated events (transformations/models/staging/stg_events.sql), in
# the order a worker folds a user's batch: by time, ties by event id.
STAGED_EVENTS_SQL: Final = """
SELECT event_id, user_id, event_type, item_id, category, price, epoch_us(event_ts) AS ts
FROM stg_events
ORDER BY user_id, event_ts, event_id
"""


@dataclass(frozen=True)
class BackfillReport:
    events: int
    users: int
    path: Path
    seconds: float


class StagedEvent(NamedTuple):
    """An event as the warehouse holds it, with what the fold reads (`EventFacts`)."""

    event_id: str
    user_id: int
    event_type: str
    item_id: int | None
    category: str | None
    price: float | None
    ts: datetime


def replay(events: Iterable[StagedEvent | Event]) -> Iterator[dict[str, Any]]:
    """One session-log row after each event, as a worker whose clock reads the event's
    time logs it. Events come grouped by user, each user's in (time, event id) order."""
    clock = ManualClock(EARLIEST)
    state = new_state()
    previous: tuple[int, datetime] | None = None
    for event in events:
        key = (event.user_id, event.ts)
        if previous is not None and key < previous:
            raise ValueError(
                f"event {event.event_id} of user {event.user_id} at {event.ts} comes after "
                f"{previous}: replay needs events sorted by user_id, then ts"
            )
        if previous is None or event.user_id != previous[0]:
            state = new_state()
        previous = key
        clock.set(event.ts)
        apply_new(state, [event], (), clock)
        yield session_features(event.user_id, state)


def staged_events(warehouse: Path) -> Iterator[StagedEvent]:
    """The warehouse's deduplicated events, streamed in replay order.

    Opened with dbt's own configuration: `tailor transform` runs this in the process
    whose dbt run left the warehouse open, and DuckDB refuses a second configuration.
    """
    with duckdb.connect(str(warehouse)) as connection:
        reader = connection.sql(STAGED_EVENTS_SQL).to_arrow_reader(_CHUNK_ROWS)
        for batch in reader:
            columns = [batch.column(name).to_pylist() for name in StagedEvent._fields]
            # Aware datetimes from microseconds: 15 times faster than Arrow's zoned ones.
            columns[-1] = [_EPOCH + timedelta(microseconds=us) for us in columns[-1]]
            yield from map(StagedEvent._make, zip(*columns, strict=True))


def write_history(events: Iterable[StagedEvent | Event], log_dir: Path) -> tuple[int, int, Path]:
    """Replay `events` into the history part of the log at `log_dir`; returns the
    number of events, of users, and the part's path."""
    batches: list[pa.RecordBatch] = []
    rows: list[dict[str, Any]] = []
    users: set[int] = set()
    for row in replay(events):
        rows.append(row)
        users.add(row["user_id"])
        if len(rows) >= _CHUNK_ROWS:
            batches.append(pa.RecordBatch.from_pylist(rows, schema=SESSION_LOG_SCHEMA))
            rows = []
    batches.append(pa.RecordBatch.from_pylist(rows, schema=SESSION_LOG_SCHEMA))
    table = pa.Table.from_batches(batches, schema=SESSION_LOG_SCHEMA)
    return table.num_rows, len(users), write_part(log_dir, HISTORY_PART, table)


def backfill_session_log(settings: TailorSettings) -> BackfillReport:
    """Replay the warehouse's events into the offline session log; run after dbt build."""
    if not settings.warehouse_path.is_file():
        raise FileNotFoundError(
            f"no warehouse at {settings.warehouse_path}; run `tailor transform` first"
        )
    started = time.perf_counter()
    events, users, path = write_history(
        staged_events(settings.warehouse_path), settings.session_log_dir
    )
    return BackfillReport(events, users, path, time.perf_counter() - started)
