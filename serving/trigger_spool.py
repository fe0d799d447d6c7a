"""Triggers the outbox database could not take, kept on local disk until it can.

A trigger fires during a decision; if the outbox insert fails then (database down),
the trigger is appended to a JSON Lines file of this process (fsynced) instead of
being dropped, and the dispatcher moves spooled triggers into the outbox once the
database answers. The outbox's unique (user, placement, rule, window) key makes the
move idempotent, so a replay that is cut short and repeated, or two processes
replaying the same leftovers, still record each trigger once.

Files follow the decision log's spill discipline: a writer holds an exclusive `flock`
on its own file while it may append; a replayer takes only files it can lock, so it
never reads a file still being written, and a crashed writer's file becomes
replayable at once.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import IO

from serving.outbox import Enqueued, Outbox, OutboxUnavailable, Trigger

log = logging.getLogger(__name__)

SPOOL_PATTERN = "triggers-*.jsonl"


def _line(trigger: Trigger) -> str:
    return json.dumps({**asdict(trigger), "window_start": trigger.window_start.isoformat()})


def _trigger(line: str) -> Trigger:
    data = json.loads(line)
    return Trigger(**{**data, "window_start": datetime.fromisoformat(data["window_start"])})


class TriggerSpool:
    def __init__(self, outbox: Outbox, directory: Path) -> None:
        self._outbox = outbox
        self._directory = directory
        self._own: IO[str] | None = None
        self._lock = threading.Lock()

    def record(self, trigger: Trigger) -> Enqueued | None:
        """Into the outbox, or onto the spool (None) when the database fails; raises
        OSError only if the local disk fails too."""
        try:
            return self._outbox.enqueue(trigger)
        except OutboxUnavailable as error:
            log.warning("outbox down, spooling trigger %s: %s", trigger.rule_id, error)
        with self._lock:
            if self._own is None:
                self._own = self._create()
            self._own.write(_line(trigger) + "\n")
            self._own.flush()
            os.fsync(self._own.fileno())
        return None

    def _create(self) -> IO[str]:
        self._directory.mkdir(parents=True, exist_ok=True)
        stem = f"triggers-{os.getpid()}-{time.time_ns()}"
        partial = self._directory / f"{stem}.partial"
        handle = partial.open("x", encoding="utf-8")
        fcntl.flock(handle, fcntl.LOCK_EX)
        partial.rename(self._directory / f"{stem}.jsonl")
        return handle

    def replay(self) -> int:
        """Move every spooled trigger into the outbox; how many were new there. Stops at
        the first database failure and leaves the rest for the next call."""
        with self._lock:  # this process's file becomes replayable; new spills start a new one
            if self._own is not None:
                self._own.close()
                self._own = None
        created = 0
        for path in sorted(self._directory.glob(SPOOL_PATTERN)):
            try:
                handle = path.open(encoding="utf-8")
            except FileNotFoundError:  # replayed by another process meanwhile
                continue
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # its writer may still append
                    continue
                if os.fstat(handle.fileno()).st_nlink == 0:
                    continue
                for number, line in enumerate(handle, start=1):
                    try:
                        trigger = _trigger(line)
                    except (ValueError, TypeError, KeyError):
                        log.warning(
                            "skipping unreadable line %d of %s (torn by a crash?)", number, path
                        )
                        continue
                    try:
                        created += self._outbox.enqueue(trigger).created
                    except OutboxUnavailable:
                        return created
                path.unlink()
        return created

    def close(self) -> None:
        with self._lock:
            if self._own is not None:
                self._own.close()
                self._own = None
