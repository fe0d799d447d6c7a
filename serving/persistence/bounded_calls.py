"""Database calls on the request path, each waited for at most a budget.

PostgreSQL's driver has a connect timeout but no read timeout: a frozen server, or a
network path that swallows packets, holds a query until the connection breaks, and a
decision waiting on it would hold its request as long. Calls run on a few threads of
their own; the caller waits at most `budget_seconds`, and while every thread is still
waiting on the database the next call fails at once instead of queueing behind them.
A call the caller gave up on may still complete later: callers use this only for
reads, or for writes that are idempotent by key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

SLOTS = 4  # calls that may wait on the database at once


class DatabaseTooSlow(RuntimeError):
    """The call did not answer within the budget, or every slot is still waiting."""


class BoundedCalls:
    def __init__(self, name: str, budget_seconds: float) -> None:
        self._budget = budget_seconds
        self._pool = ThreadPoolExecutor(SLOTS, thread_name_prefix=name)
        self._free_slots = threading.Semaphore(SLOTS)

    def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`function`'s result, or its exception; `DatabaseTooSlow` past the budget."""
        if not self._free_slots.acquire(blocking=False):
            raise DatabaseTooSlow("every database call slot is still waiting on the database")
        running = self._pool.submit(self._released_after, function, *args, **kwargs)
        try:
            return running.result(timeout=self._budget)
        except FutureTimeout:
            raise DatabaseTooSlow(
                f"the database did not answer within {self._budget:g} s"
            ) from None

    def _released_after(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        finally:
            self._free_slots.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False)
