"""What users did after the decisions each rule decided, and after the rest: counted
from the decision log and its outcomes, per placement and deciding rule.

A rule decides a decision when the decision's `winning_rule` names it (a force that
chose the variant, or the boost or penalty that changed the winner). Holdout decisions
are left out: no rule runs there, so they are no fair comparison.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, or_, select

from serving.experiments.assignment import HOLDOUT_ARM
from serving.experiments.engagement import Engagement
from tailor.core.database.decision_outcomes import per_decision
from tailor.core.database.schema import decisions


def engagement_by_rule(
    engine: Engine, since: datetime, until: datetime
) -> dict[tuple[str, str | None], Engagement]:
    """(placement, deciding rule or None) -> counts, for decisions in [since, until)."""
    outcome = per_decision()
    rule = decisions.c.decision["winning_rule"].as_string()
    query = (
        select(
            decisions.c.placement,
            rule,
            func.count(),
            func.coalesce(func.sum(outcome.c.impression), 0),
            func.coalesce(func.sum(outcome.c.click), 0),
            func.coalesce(func.sum(outcome.c.conversion), 0),
        )
        .outerjoin(outcome, outcome.c.decision_id == decisions.c.decision_id)
        .where(
            decisions.c.created_at >= since,
            decisions.c.created_at < until,
            or_(decisions.c.arm.is_(None), decisions.c.arm != HOLDOUT_ARM),
        )
        .group_by(decisions.c.placement, rule)
    )
    with engine.connect() as connection:
        return {
            (placement, winner): Engagement(*(int(v) for v in values))
            for placement, winner, *values in connection.execute(query)
        }
