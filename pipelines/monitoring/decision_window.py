"""What monitoring reads from the decision log: the scored decisions of a window, and
the decisions of an older window joined with whether they converted.

A window holds at most `limit` decisions: beyond it, those with the lowest decision
ids, which are uuid4s, so a uniform sample of the window (the database keeps only
the first `limit` of the ordering, never the whole window in memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from tailor.core.database.decision_outcomes import per_decision
from tailor.core.database.schema import decisions


@dataclass(frozen=True)
class ScoredDecision:
    model_version: str | None
    propensity: float
    features: dict[str, Any] | None  # None: not sampled for the feature log
    context: dict[str, Any]  # the request's context (device, country, ...)


def scored_decisions(
    connection: Connection, start: datetime, end: datetime, limit: int
) -> list[ScoredDecision]:
    """Decisions in [start, end) that a model scored."""
    query = (
        select(
            decisions.c.model_version,
            decisions.c.propensity,
            decisions.c.features,
            decisions.c.request,
        )
        .where(
            decisions.c.created_at >= start,
            decisions.c.created_at < end,
            decisions.c.propensity.is_not(None),
        )
        .order_by(decisions.c.decision_id)
        .limit(limit)
    )
    return [
        ScoredDecision(
            model_version=row.model_version,
            propensity=row.propensity,
            features=row.features,
            context=(row.request or {}).get("context") or {},
        )
        for row in connection.execute(query)
    ]


@dataclass(frozen=True)
class ConversionStream:
    """Decisions in time order: when, under which model, its score, and whether the
    user converted after it."""

    created_at: list[datetime]
    model_version: list[str | None]
    propensity: np.ndarray  # NaN where no model scored
    converted: np.ndarray  # 0/1

    def __len__(self) -> int:
        return len(self.created_at)


def conversion_stream(
    connection: Connection, start: datetime, end: datetime, limit: int
) -> ConversionStream:
    """Every decision in [start, end), scored or not: the conversion rate is the
    business's, whatever served it."""
    outcome = per_decision()
    sample = (
        select(
            decisions.c.created_at,
            decisions.c.model_version,
            decisions.c.propensity,
            func.coalesce(outcome.c.conversion, 0).label("converted"),
        )
        .outerjoin(outcome, outcome.c.decision_id == decisions.c.decision_id)
        .where(decisions.c.created_at >= start, decisions.c.created_at < end)
        .order_by(decisions.c.decision_id)
        .limit(limit)
        .subquery()
    )
    rows = connection.execute(select(sample).order_by(sample.c.created_at)).all()
    return ConversionStream(
        created_at=[row.created_at for row in rows],
        model_version=[row.model_version for row in rows],
        propensity=np.array(
            [np.nan if row.propensity is None else row.propensity for row in rows], dtype=float
        ),
        converted=np.array([row.converted for row in rows], dtype=np.int8),
    )
