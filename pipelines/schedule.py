"""Jobs on a schedule, an interval (`15m`) or a cron expression: `run_on_schedule` runs
every scheduled command (materialize, monitor, retrain; `tailor/cli/scheduling.py`).

Every materialization, scheduled or by hand, goes through `materialize_locked`: it
takes the run lock (a run already in progress makes this one skip, never wait and pile
up) and records the outcome, so `tailor materialize --status` and /health know the
last successful run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from pipelines.materialize import MaterializeReport, materialize
from pipelines.run_lock import FileRunLock, RedisRunLock, RunLock
from tailor.core.clients import redis_client
from tailor.core.durations import parse_duration
from tailor.core.run_records import RunRecord, run_records
from tailor.core.settings import TailorSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    every: timedelta | None = None
    cron: str | None = None

    @classmethod
    def parse(cls, every: str | None, cron: str | None) -> Schedule:
        if (every is None) == (cron is None):
            raise ValueError("give one of --every (e.g. 15m) or --cron (e.g. '*/15 * * * *')")
        if every is not None:
            try:
                return cls(every=parse_duration(every))
            except ValueError as error:
                raise ValueError(f"--every: {error}") from None
        if not croniter.is_valid(cron):
            raise ValueError(f"--cron {cron!r} is not a cron expression, e.g. '*/15 * * * *'")
        return cls(cron=cron)

    def next_after(self, moment: datetime) -> datetime:
        if self.every is not None:
            return moment + self.every
        return croniter(self.cron, moment).get_next(datetime)


def run_lock(settings: TailorSettings) -> RunLock:
    if settings.profile == "redis":
        key = f"{settings.project}:materialize:lock"
        return RedisRunLock(redis_client(settings), key, settings.scheduler.lock_ttl_seconds)
    return FileRunLock(settings.feature_store_dir / "materialize.lock")


def _record(report: MaterializeReport | None, started: datetime, error: str | None) -> RunRecord:
    return RunRecord(
        started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        ok=error is None,
        mode=report.mode if report else None,
        window_start=report.start.isoformat() if report and report.start else None,
        window_end=report.end.isoformat() if report else None,
        entities_per_view=report.entities_per_view if report else None,
        seconds=report.seconds if report else None,
        error=error,
        runner=f"{socket.gethostname()}-{os.getpid()}",
    )


def materialize_locked(
    settings: TailorSettings, start: datetime | None = None, end: datetime | None = None
) -> MaterializeReport | None:
    """One run under the lock; None when another run holds it. Failures are recorded
    and raised."""
    records = run_records(settings)
    with run_lock(settings).hold() as acquired:
        if not acquired:
            log.warning("another materialization is running; skipping this one")
            return None
        started = datetime.now(UTC)
        try:
            report = materialize(settings, start, end)
        except Exception as error:
            records.add(_record(None, started, f"{type(error).__name__}: {error}"))
            raise
        records.add(_record(report, started, None))
        return report


def run_on_schedule(
    schedule: Schedule, stop: threading.Event, job: Callable[[], None], name: str
) -> None:
    """Run `job` until `stop` is set; an interval schedule runs once at start, cron
    waits. A failed run is logged and the next slot runs as planned."""
    next_run = datetime.now(UTC) if schedule.every else schedule.next_after(datetime.now(UTC))
    while not stop.is_set():
        wait = (next_run - datetime.now(UTC)).total_seconds()
        if wait > 0 and stop.wait(wait):
            return
        try:
            job()
        except Exception:
            log.exception("%s failed; it is retried at the next slot", name)
        now = datetime.now(UTC)
        while next_run <= now:  # a run longer than the interval skips the missed slots
            next_run = schedule.next_after(next_run)
