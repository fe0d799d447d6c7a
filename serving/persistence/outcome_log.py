"""Outcomes, attributed to their decisions and stored off the request path.

An outcome counts only for a decision the log knows, and only inside its type's
attribution window after it (settings: click 1 h, conversion 24 h by default, a minute
of clock skew before). Outside, or for a decision that never appears, it is counted by
reason (`tailor_outcomes_dropped_total{reason}`) and not stored. The decision may sit
in another replica's buffer for a moment, so an outcome whose decision is not in the
database yet waits and is tried again, for `unknown_decision_grace_seconds` from the
first pass that found the database answering. Storage is exactly-once by `outcome_id`.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Connection, Engine, select

from serving.persistence.durable_writer import DurableWriter, WriterOptions
from tailor.core.database.engine import insert_ignoring_conflicts
from tailor.core.database.schema import decisions, outcomes, utc_now
from tailor.core.outcome import Outcome
from tailor.core.settings import OutcomeSettings

STORED = Counter("tailor_outcomes_attributed", "Outcomes attributed to a decision", ["type"])
DROPPED = Counter("tailor_outcomes_dropped", "Outcomes not stored, by reason", ["reason"])


class _Outcomes:
    name = "outcomes"

    def __init__(self, engine: Engine, settings: OutcomeSettings) -> None:
        self._insert = insert_ignoring_conflicts(engine, outcomes)
        self._windows = {
            "impression": timedelta(seconds=settings.impression_window_seconds),
            "click": timedelta(seconds=settings.click_window_seconds),
            "conversion": timedelta(seconds=settings.conversion_window_seconds),
        }
        self._skew = timedelta(seconds=settings.clock_skew_seconds)
        self._grace = settings.unknown_decision_grace_seconds
        self._waiting_since: dict[str, float] = {}  # outcome id -> first pass without it

    def key(self, outcome: Outcome) -> str:
        return outcome.outcome_id

    def to_json(self, outcome: Outcome) -> dict[str, Any]:
        return outcome.model_dump(mode="json")

    def from_json(self, data: dict[str, Any]) -> Outcome:
        return Outcome.model_validate(data)

    def write(self, connection: Connection, batch: list[Outcome]) -> list[Outcome]:
        wanted = {outcome.decision_id for outcome in batch}
        made_at = dict(
            connection.execute(
                select(decisions.c.decision_id, decisions.c.created_at).where(
                    decisions.c.decision_id.in_(wanted)
                )
            ).all()
        )
        attributed, later, dropped = [], [], []
        now = time.monotonic()
        for outcome in batch:
            decided = made_at.get(outcome.decision_id)
            if decided is None:
                since = self._waiting_since.setdefault(outcome.outcome_id, now)
                if now - since < self._grace:
                    later.append(outcome)
                    continue
                reason = "unknown_decision"
            elif outcome.ts < decided - self._skew:
                reason = "before_decision"
            elif outcome.ts > decided + self._windows[outcome.type]:
                reason = "outside_window"
            else:
                attributed.append(outcome)
                reason = None
            self._waiting_since.pop(outcome.outcome_id, None)
            if reason is not None:
                dropped.append(reason)
        if attributed:
            recorded_at = utc_now()
            connection.execute(
                self._insert,
                [outcome.model_dump() | {"recorded_at": recorded_at} for outcome in attributed],
            )
        # Counted once the statements went through: a failed batch is retried whole.
        for outcome in attributed:
            STORED.labels(outcome.type).inc()
        for reason in dropped:
            DROPPED.labels(reason).inc()
        return later


class OutcomeLog(DurableWriter[Outcome]):
    def __init__(self, engine: Engine, settings: OutcomeSettings, options: WriterOptions) -> None:
        super().__init__(engine, _Outcomes(engine, settings), options)
