"""Triggers the outbox database could not take, kept on local disk until it can.

A trigger fires during a decision; if the outbox insert fails then (database down), or
does not answer within `budget_seconds` (a frozen database: see `BoundedCalls`), the
trigger is appended to a JSON Lines file of this process (fsynced) instead of being
dropped or holding the request, and the dispatcher moves spooled triggers into the outbox once the
database answers. The outbox's unique (user, placement, rule, window) key makes the
move idempotent, so a replay that is cut short and repeated, two processes replaying
the same leftovers, or an insert that completes after the request gave up on it, still
record each trigger once.

The files are `JsonlSpool`s, like the decision log's spill: a replayer never reads a
file still being written, and a crashed writer's file is replayable at once.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from serving.decision.ports import Enqueued, Trigger
from serving.persistence.bounded_calls import BoundedCalls, DatabaseTooSlow
from serving.persistence.jsonl_spool import JsonlSpool, SpillBacklog, parsed_lines
from serving.persistence.outbox import Outbox, OutboxUnavailable

log = logging.getLogger(__name__)


def _line(trigger: Trigger) -> str:
    return json.dumps({**asdict(trigger), "window_start": trigger.window_start.isoformat()})


def _trigger(line: str) -> Trigger:
    data = json.loads(line)
    return Trigger(**{**data, "window_start": datetime.fromisoformat(data["window_start"])})


class TriggerSpool:
    def __init__(self, outbox: Outbox, directory: Path, budget_seconds: float) -> None:
        self._outbox = outbox
        self._inserts = BoundedCalls("trigger-insert", budget_seconds)
        self._spool = JsonlSpool(directory, "triggers")
        self._lock = threading.Lock()

    def record(self, trigger: Trigger) -> Enqueued | None:
        """Into the outbox, or onto the spool (None) when the database fails; raises
        OSError only if the local disk fails too."""
        try:
            return self._inserts.call(self._outbox.enqueue, trigger)
        except (OutboxUnavailable, DatabaseTooSlow) as error:
            log.warning("outbox down, spooling trigger %s: %s", trigger.rule_id, error)
        with self._lock:
            self._spool.append([_line(trigger) + "\n"])
        return None

    def replay(self) -> int:
        """Move every spooled trigger into the outbox; how many were new there. Stops at
        the first database failure and leaves the rest for the next call."""
        with self._lock:  # this process's file becomes replayable; new spills start a new one
            self._spool.release()
        created = 0
        for path, handle in self._spool.replayable():
            for trigger in parsed_lines(path, handle, _trigger):
                try:
                    created += self._outbox.enqueue(trigger).created
                except OutboxUnavailable:
                    return created
            path.unlink()
        return created

    def spilled(self) -> SpillBacklog:
        return self._spool.backlog()

    def close(self) -> None:
        self._inserts.close()
        with self._lock:
            self._spool.release()
