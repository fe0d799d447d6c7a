"""What the shadow report counts: per shadow arm, the decisions it saw, its failures,
where it disagreed with the champion, and how long it took."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Engine, func, select

from tailor.core.database.schema import shadow_decisions


@dataclass
class ShadowCounts:
    evaluated: int = 0
    agreed: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    # (champion's variant, shadow's variant) -> decisions, where they differ
    disagreements: dict[tuple[str, str], int] = field(default_factory=dict)
    latency_ms: np.ndarray = field(default_factory=lambda: np.empty(0))


def shadow_counts(engine: Engine, experiment_key: str) -> dict[str, ShadowCounts]:
    table = shadow_decisions
    mine = table.c.experiment_key == experiment_key
    pairs = (
        select(
            table.c.arm,
            table.c.champion_variant_id,
            table.c.variant_id,
            table.c.error,
            func.count(),
        )
        .where(mine)
        .group_by(table.c.arm, table.c.champion_variant_id, table.c.variant_id, table.c.error)
    )
    latencies = select(table.c.arm, table.c.latency_ms).where(mine & table.c.error.is_(None))
    counts: dict[str, ShadowCounts] = {}
    with engine.connect() as connection:
        for arm, champion, shadow, error, decisions in connection.execute(pairs):
            arm_counts = counts.setdefault(arm, ShadowCounts())
            if error is not None:
                arm_counts.failed[error] = arm_counts.failed.get(error, 0) + decisions
                continue
            arm_counts.evaluated += decisions
            if champion == shadow:
                arm_counts.agreed += decisions
            else:
                arm_counts.disagreements[(champion, shadow)] = decisions
        by_arm: dict[str, list[float]] = {}
        for arm, latency in connection.execute(latencies):
            by_arm.setdefault(arm, []).append(latency)
    for arm, values in by_arm.items():
        counts[arm].latency_ms = np.asarray(values)
    return counts
