"""A lock that keeps two materializations from running at once and dies with its holder.

Embedded: `flock` on a file in the data dir; the kernel releases it when the process
exits, however it exits. Redis profile: a Redis lock with an expiry, for schedulers
on several hosts; the holder renews it every third of `ttl_seconds` while it runs, so
a run may last any time, and a crashed holder's lock lapses within `ttl_seconds`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Protocol

import redis
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)


class RunLock(Protocol):
    def hold(self) -> AbstractContextManager[bool]:
        """Yield True when the lock was taken, False when another run holds it."""


class FileRunLock:
    def __init__(self, path: Path) -> None:
        self._path = path

    @contextmanager
    def hold(self) -> Iterator[bool]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)


class RedisRunLock:
    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float) -> None:
        # Not thread-local: the renewal thread must see the holder's token.
        self._lock = client.lock(key, timeout=ttl_seconds, blocking=False, thread_local=False)
        self._ttl = ttl_seconds

    def _renew_until(self, done: threading.Event) -> None:
        while not done.wait(self._ttl / 3):
            try:
                self._lock.extend(self._ttl, replace_ttl=True)
            except (LockError, RedisError):
                log.exception(
                    "could not renew the materialization lock; if Redis stays away for "
                    "%s s another run may start beside this one",
                    self._ttl,
                )

    @contextmanager
    def hold(self) -> Iterator[bool]:
        if not self._lock.acquire():
            yield False
            return
        done = threading.Event()
        renewer = threading.Thread(
            target=self._renew_until, args=(done,), name="run-lock-renewal", daemon=True
        )
        renewer.start()
        try:
            yield True
        finally:
            done.set()
            renewer.join()
            # Lapsed while Redis was unreachable: nothing is left to release.
            with suppress(redis.exceptions.LockNotOwnedError):
                self._lock.release()
