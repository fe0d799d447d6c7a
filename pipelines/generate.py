"""Generate a synthetic clickstream with known purchase propensities.

Users are simulated in chunks of `chunk_users`; each chunk becomes one part file in
the events directory and one in the ground-truth directory, written as the chunk runs,
so memory stays bounded whatever the number of users. The behaviour model lives in
`pipelines.generator`; this module owns the period, the files and the report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.generator.catalogue import Catalogue, build_catalogue
from pipelines.generator.chunk import simulate_chunk
from tailor.core.events import EVENT_SCHEMA, GROUND_TRUTH_SCHEMA
from tailor.core.settings import GeneratorSettings

GENERATED_GLOB = "generated-part-*.parquet"
# Days are buffered into row groups of about this many rows: a few large groups scan
# faster than one tiny group per day, and the cap keeps memory independent of `days`.
ROW_GROUP_ROWS = 500_000
# Keeps the catalogue's random stream apart from every chunk's SeedSequence([seed, chunk]).
_CATALOGUE_SPAWN_KEY = (0,)


@dataclass(frozen=True)
class GenerationReport:
    """What one run wrote; the simulated period is [start, end), both midnight UTC."""

    users: int
    sessions: int
    events: int
    purchases: int
    files: list[Path]
    start: datetime
    end: datetime
    seconds: float


def simulated_period(config: GeneratorSettings, today: date) -> tuple[date, date]:
    """First simulated day and the (excluded) end date.

    The default end is `today` (UTC, by the caller's clock), so yesterday is the last
    simulated day and features built from the data are fresh when served now.
    """
    end = config.end_date or today
    return end - timedelta(days=config.days), end


def simulated_catalogue(config: GeneratorSettings) -> Catalogue:
    """The run's catalogue: the same for every chunk, and for the visit simulator."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=_CATALOGUE_SPAWN_KEY))
    return build_catalogue(config.categories, rng)


def generate_events(
    config: GeneratorSettings,
    events_dir: Path,
    ground_truth_dir: Path,
    *,
    today: date,
    on_progress: Callable[[int], None] | None = None,
) -> GenerationReport:
    """Replace the generated part files in both directories with a fresh simulation.

    Parts are written under hidden temp names and swapped in only after every chunk
    succeeded, so readers (which glob ``*.parquet``) never see a half-written set and a
    failed run keeps the previous one. Other files, e.g. imported events, are untouched.
    """
    started = time.perf_counter()
    first_day, end_day = simulated_period(config, today)
    catalogue = simulated_catalogue(config)
    directories = (Path(events_dir), Path(ground_truth_dir))
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)

    renames: list[tuple[Path, Path]] = []
    counts = _Counts()
    try:
        for chunk, first_user in enumerate(range(1, config.users + 1, config.chunk_users)):
            chunk_users = min(config.chunk_users, config.users - first_user + 1)
            targets = [directory / _part_name(chunk) for directory in directories]
            temps = [path.with_name(f".{path.name}.{os.getpid()}.tmp") for path in targets]
            renames.extend(zip(temps, targets, strict=True))
            days = simulate_chunk(
                config.seed,
                chunk,
                first_user,
                chunk_users,
                catalogue,
                first_day,
                config.days,
                config.device_shares,
            )
            _write_chunk(days, *temps, counts)
            if on_progress is not None:
                on_progress(chunk_users)
        for directory in directories:
            for old in directory.glob(GENERATED_GLOB):
                old.unlink()
        for temp, target in renames:
            temp.replace(target)
    finally:
        for temp, _ in renames:
            temp.unlink(missing_ok=True)

    return GenerationReport(
        users=config.users,
        sessions=counts.sessions,
        events=counts.events,
        purchases=counts.purchases,
        files=[target for _, target in renames],
        start=datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC),
        end=datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC),
        seconds=time.perf_counter() - started,
    )


def _part_name(chunk: int) -> str:
    return GENERATED_GLOB.replace("*", f"{chunk:05d}")


@dataclass
class _Counts:
    sessions: int = 0
    events: int = 0
    purchases: int = 0

    def add(self, events: pa.Table, truth: pa.Table) -> None:
        self.sessions += truth.num_rows
        self.events += events.num_rows
        self.purchases += pc.sum(pc.equal(events["event_type"], "purchase")).as_py() or 0


def _write_chunk(
    days: Iterator[tuple[pa.Table, pa.Table]], events_path: Path, truth_path: Path, counts: _Counts
) -> None:
    """Stream a chunk's days into its two part files as they are simulated."""
    with (
        _PartWriter(events_path, EVENT_SCHEMA) as event_writer,
        _PartWriter(truth_path, GROUND_TRUTH_SCHEMA) as truth_writer,
    ):
        for events, truth in days:
            event_writer.write(events)
            truth_writer.write(truth)
            counts.add(events, truth)


class _PartWriter:
    """Writes one part file, buffering daily tables into row groups of ROW_GROUP_ROWS."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(path, schema)
        self._buffer: list[pa.Table] = []
        self._rows = 0

    def write(self, table: pa.Table) -> None:
        self._buffer.append(table)
        self._rows += table.num_rows
        if self._rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.concat_tables(self._buffer), row_group_size=self._rows)
        self._buffer, self._rows = [], 0

    def __enter__(self) -> _PartWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._flush()
        self._writer.close()
