"""A lock that keeps two materializations from running at once and dies with its holder.

Embedded: `flock` on a file in the data dir; the kernel releases it when the process
exits, however it exits. Redis profile: a Redis lock with an expiry, for schedulers
on several hosts; a crashed holder's lock lapses after `ttl_seconds`.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Protocol

import redis


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
        self._lock = client.lock(key, timeout=ttl_seconds, blocking=False)

    @contextmanager
    def hold(self) -> Iterator[bool]:
        if not self._lock.acquire():
            yield False
            return
        try:
            yield True
        finally:
            # Expired during a run longer than the TTL: nothing is left to release.
            with suppress(redis.exceptions.LockNotOwnedError):
                self._lock.release()
