"""Append-only JSON Lines files that outlive a database outage and a crash.

The decision log and the trigger spool both keep on local disk what the database could
not take, and replay it later from any process. Each process appends to a file of its
own, created under a temporary name, locked with `flock` and only then renamed into
the pattern, and it keeps the lock while it may append: a replayer takes only files it
can lock, so it never reads one still being written, and a crashed writer's file is
replayable at once. Appends are whole lines, flushed and fsynced, so only a crash can
leave a torn line, and only at a file's end; readers skip it with a warning.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class SpillBacklog:
    """Spill files waiting for replay: sizes, not line counts, so looking is a `stat`
    per file even when an outage has filled gigabytes."""

    files: int
    bytes: int


class JsonlSpool:
    def __init__(self, directory: Path, prefix: str) -> None:
        self.directory = directory
        self.pattern = f"{prefix}-*.jsonl"
        self._prefix = prefix
        self._own: IO[str] | None = None

    def append(self, lines: list[str]) -> None:
        """Whole lines (each ending in a newline), durable on return."""
        if self._own is None:
            self._own = self._create()
        self._own.write("".join(lines))
        self._own.flush()
        os.fsync(self._own.fileno())

    def _create(self) -> IO[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = f"{self._prefix}-{os.getpid()}-{time.time_ns()}"
        partial = self.directory / f"{stem}.partial"
        handle = partial.open("x", encoding="utf-8")
        fcntl.flock(handle, fcntl.LOCK_EX)
        partial.rename(self.directory / f"{stem}.jsonl")
        return handle

    def release(self) -> None:
        """Close this process's file, which makes it replayable; the next append starts
        a new one."""
        if self._own is not None:
            self._own.close()
            self._own = None

    def backlog(self) -> SpillBacklog:
        sizes = []
        for path in self.directory.glob(self.pattern):
            try:
                sizes.append(path.stat().st_size)
            except FileNotFoundError:  # replayed and deleted meanwhile
                continue
        return SpillBacklog(files=len(sizes), bytes=sum(sizes))

    def replayable(self) -> Iterator[tuple[Path, IO[str]]]:
        """Each file no live writer holds, locked for the caller until it asks for the
        next; the caller deletes it once its lines are safe elsewhere."""
        for path in sorted(self.directory.glob(self.pattern)):
            try:
                handle = path.open(encoding="utf-8")
            except FileNotFoundError:  # another process replayed it meanwhile
                continue
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # its writer is alive and may still append
                    continue
                if os.fstat(handle.fileno()).st_nlink == 0:  # replayed and deleted meanwhile
                    continue
                yield path, handle


def parsed_lines(path: Path, handle: IO[str], parse: Callable[[str], T]) -> Iterator[T]:
    """The file's records; an unreadable line (torn by a crash) is skipped with a warning."""
    for number, line in enumerate(handle, start=1):
        try:
            yield parse(line)
        except (ValueError, TypeError, KeyError):
            log.warning("skipping unreadable line %d of %s (torn by a crash?)", number, path)
