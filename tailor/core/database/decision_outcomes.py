"""What happened after each decision, one row per decision that has outcomes: a 0/1
flag per outcome type (a repeated click is one clicked decision) and the revenue of
its conversions. Experiment results, off-policy estimates, rule engagement and model
monitoring all count from it, so it lives in the kernel both halves share."""

from __future__ import annotations

from sqlalchemy import Subquery, case, func, select

from tailor.core.database.schema import outcomes


def _flag(kind: str):
    return func.max(case((outcomes.c.type == kind, 1), else_=0)).label(kind)


def per_decision() -> Subquery:
    """Columns: decision_id, impression, click, conversion, revenue."""
    revenue = func.sum(
        case(
            (outcomes.c.type == "conversion", func.coalesce(outcomes.c.value, 0.0)),
            else_=0.0,
        )
    )
    return (
        select(
            outcomes.c.decision_id,
            _flag("impression"),
            _flag("click"),
            _flag("conversion"),
            revenue.label("revenue"),
        )
        .group_by(outcomes.c.decision_id)
        .subquery()
    )
