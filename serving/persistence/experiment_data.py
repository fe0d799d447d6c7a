"""What an experiment's results are computed from: one row per exposed user, read from
the assignments, the decisions and the outcomes attributed to them.

Per decision an outcome type counts once (a repeated click is one clicked decision);
revenue adds up every conversion's value.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine, func, literal, select

from serving.experiments.results import ArmUsers
from tailor.core.database.decision_outcomes import per_decision
from tailor.core.database.schema import assignments, decisions


def arm_users(engine: Engine, experiment_key: str) -> dict[str, ArmUsers]:
    """Every user the experiment exposed, by arm (the stored first exposure)."""
    outcome = per_decision()
    zero = literal(0)
    query = (
        select(
            assignments.c.arm,
            assignments.c.user_id,
            assignments.c.pre_exposure_purchases,
            func.count(decisions.c.decision_id),
            func.coalesce(func.sum(outcome.c.impression), zero),
            func.coalesce(func.sum(outcome.c.click), zero),
            func.coalesce(func.sum(outcome.c.conversion), zero),
            func.coalesce(func.sum(outcome.c.revenue), 0.0),
        )
        .select_from(assignments)
        .outerjoin(
            decisions,
            (decisions.c.experiment_key == assignments.c.experiment_key)
            & (decisions.c.user_id == assignments.c.user_id),
        )
        .outerjoin(outcome, outcome.c.decision_id == decisions.c.decision_id)
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
