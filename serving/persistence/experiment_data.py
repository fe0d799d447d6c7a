"""What an experiment's results are computed from: one row per exposed user, read from
the assignments, the decisions and the outcomes attributed to them.

Per decision an outcome type counts once (a repeated click is one clicked decision);
revenue adds up every conversion's value.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine, case, func, literal, select

from serving.experiments.results import ArmUsers
from tailor.core.database.schema import assignments, decisions, outcomes


def _flag(kind: str):
    return func.max(case((outcomes.c.type == kind, 1), else_=0))


def arm_users(engine: Engine, experiment_key: str) -> dict[str, ArmUsers]:
    """Every user the experiment exposed, by arm (the stored first exposure)."""
    per_decision = (
        select(
            outcomes.c.decision_id,
            _flag("impression").label("impressed"),
            _flag("click").label("clicked"),
            _flag("conversion").label("converted"),
            func.sum(
                case(
                    (outcomes.c.type == "conversion", func.coalesce(outcomes.c.value, 0.0)),
                    else_=0.0,
                )
            ).label("revenue"),
        )
        .group_by(outcomes.c.decision_id)
        .subquery()
    )
    zero = literal(0)
    query = (
        select(
            assignments.c.arm,
            assignments.c.user_id,
            assignments.c.pre_exposure_purchases,
            func.count(decisions.c.decision_id),
            func.coalesce(func.sum(per_decision.c.impressed), zero),
            func.coalesce(func.sum(per_decision.c.clicked), zero),
            func.coalesce(func.sum(per_decision.c.converted), zero),
            func.coalesce(func.sum(per_decision.c.revenue), 0.0),
        )
        .select_from(assignments)
        .outerjoin(
            decisions,
            (decisions.c.experiment_key == assignments.c.experiment_key)
            & (decisions.c.user_id == assignments.c.user_id),
        )
        .outerjoin(per_decision, per_decision.c.decision_id == decisions.c.decision_id)
        .where(assignments.c.experiment_key == experiment_key)
        .group_by(assignments.c.arm, assignments.c.user_id, assignments.c.pre_exposure_purchases)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    by_arm: dict[str, list[tuple]] = {}
    for arm, *values in rows:
        by_arm.setdefault(arm, []).append(tuple(values))
    return {arm: _arrays(values) for arm, values in by_arm.items()}


def _arrays(rows: list[tuple]) -> ArmUsers:
    users, covariate, *sums = zip(*rows, strict=True)
    counts = [np.asarray(column, dtype=float) for column in sums]
    return ArmUsers(
        np.asarray(users, dtype=np.int64),
        *counts,
        pre_exposure_purchases=np.array(
            [np.nan if value is None else value for value in covariate], dtype=float
        ),
    )
