"""The checks behind GET /health, each bounded by the answer's time budget.

A load balancer polls /health every few seconds and gives up after a timeout of its
own: a check that waits on a frozen Redis must not hold the answer. Each check runs
on a thread of its own, at most one run at a time; one still running from an earlier
poll is not started again, so a hung dependency costs one thread, not one per poll.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class CheckResult(Generic[T]):
    value: T | None
    error: str | None  # None: the check answered in time without an exception


class BoundedCheck(Generic[T]):
    def __init__(self, name: str, check: Callable[[], T]) -> None:
        self.name = name
        self._check = check
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"health-{name}")
        self._running: Future[T] | None = None
        self._lock = threading.Lock()

    def start(self) -> Future[T]:
        with self._lock:
            if self._running is None or self._running.done():
                self._running = self._pool.submit(self._check)
            return self._running

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def results(checks: list[BoundedCheck], budget_seconds: float) -> dict[str, CheckResult]:
    """Every check started at once, each waited for until the shared deadline."""
    futures = [(check.name, check.start()) for check in checks]
    deadline = time.monotonic() + budget_seconds
    answered: dict[str, CheckResult] = {}
    for name, future in futures:
        try:
            value = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            answered[name] = CheckResult(None, f"no answer within {budget_seconds:g} s")
        except Exception as error:  # a check's failure is what /health reports
            answered[name] = CheckResult(None, str(error) or type(error).__name__)
        else:
            answered[name] = CheckResult(value, None)
    return answered
