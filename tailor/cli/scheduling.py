"""`--every` / `--cron` for the commands that run forever (materialize, monitor,
retrain): one schedule parser, a clean stop on SIGINT or SIGTERM, one loop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from tailor.cli.app import console, fail


def run_forever(every: str | None, cron: str | None, what: str, job: Callable[[], None]) -> None:
    """Run `job` on the schedule until stopped; a failed run is logged and the next slot
    runs as planned. `what` names the job in the console and the log."""
    from pipelines.schedule import Schedule, run_on_schedule

    try:
        schedule = Schedule.parse(every, cron)
    except ValueError as error:
        raise fail(str(error)) from error
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    console.print(f"{what} on schedule {every or cron}; Ctrl-C to stop")
    run_on_schedule(schedule, stop, job, what)
