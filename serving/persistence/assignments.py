"""Sticky experiment assignments: each user's first exposure, kept in the database.

The request path asks for a user's stored arm: from memory when this process has seen
the user (an LRU of `cache_size` entries), else one primary-key lookup, waited for at
most `lookup_budget_seconds` (`BoundedCalls`; on `DatabaseTooSlow` the caller serves
the champion and says so, `assignment_unavailable`). A first
exposure is remembered at once in memory and written off the request path (a
`DurableWriter`, so an outage spills it to disk); the first write wins, whichever
replica makes it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from serving.experiments.assignment import Exposure
from serving.persistence.bounded_calls import BoundedCalls
from serving.persistence.durable_writer import DurableWriter, WriterOptions
from serving.persistence.jsonl_spool import SpillBacklog
from tailor.core.database.engine import insert_ignoring_conflicts
from tailor.core.database.schema import assignments

CACHE_SIZE = 200_000  # users x experiments remembered per process (~40 MB)


class _Exposures:
    name = "assignments"

    def __init__(self, engine: Engine) -> None:
        self._insert = insert_ignoring_conflicts(engine, assignments)

    def key(self, exposure: Exposure) -> tuple[str, int]:
        return exposure.experiment_key, exposure.user_id

    def to_json(self, exposure: Exposure) -> dict[str, Any]:
        return {**vars(exposure), "first_exposed_at": exposure.first_exposed_at.isoformat()}

    def from_json(self, data: dict[str, Any]) -> Exposure:
        moment = datetime.fromisoformat(data["first_exposed_at"])
        return Exposure(**{**data, "first_exposed_at": moment})

    def write(self, connection: Connection, batch: list[Exposure]) -> list[Exposure]:
        connection.execute(self._insert, [vars(exposure) for exposure in batch])
        return []


class AssignmentStore:
    def __init__(
        self,
        engine: Engine,
        options: WriterOptions,
        lookup_budget_seconds: float,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self._engine = engine
        self._lookups = BoundedCalls("assignment-lookup", lookup_budget_seconds)
        self._writer = DurableWriter(engine, _Exposures(engine), options)
        self._known: OrderedDict[tuple[str, int], str | None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def arm_of(self, experiment_key: str, user_id: int) -> str | None:
        """The stored arm; a user without one is remembered as such too, so a user the
        coverage leaves out costs one lookup per process, not one per decision."""
        key = (experiment_key, user_id)
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
                return self._known[key]
        pending = self._writer.pending(key)
        if pending is not None:
            return pending.arm
        # SQLAlchemyError or DatabaseTooSlow: the caller degrades
        arm = self._lookups.call(self._stored_arm, experiment_key, user_id)
        self._cache(key, arm)
        return arm

    def _stored_arm(self, experiment_key: str, user_id: int) -> str | None:
        with self._engine.connect() as connection:
            return connection.execute(
                select(assignments.c.arm).where(
                    assignments.c.experiment_key == experiment_key,
                    assignments.c.user_id == user_id,
                )
            ).scalar_one_or_none()

    def remember(self, exposure: Exposure) -> None:
        key = (exposure.experiment_key, exposure.user_id)
        with self._lock:
            if self._known.get(key) is not None:
                return
        self._cache(key, exposure.arm)
        self._writer.record(exposure)

    def _cache(self, key: tuple[str, int], arm: str | None) -> None:
        with self._lock:
            self._known[key] = arm
            self._known.move_to_end(key)
            while len(self._known) > self._cache_size:
                self._known.popitem(last=False)

    def flush(self, timeout: float = 10.0) -> bool:
        return self._writer.flush(timeout)

    def spilled(self) -> SpillBacklog:
        return self._writer.spilled()

    def close(self) -> None:
        self._lookups.close()
        self._writer.close()

    def forget_user(self, user_id: int) -> None:
        """Drop the user's remembered arms (their data was erased): a later exposure
        reads the database again instead of trusting this process's memory."""
        with self._lock:
            for key in [key for key in self._known if key[1] == user_id]:
                del self._known[key]
