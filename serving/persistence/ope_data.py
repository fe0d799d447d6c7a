"""What off-policy evaluation reads: an experiment's served decisions with their
outcomes and, for a shadow arm, what it would have done beside each.

The candidates of each logged decision give the variants' probabilities under the
serving policy and what the reward model learns from: the three signal components,
the base score, the user's propensity percentile, the hour, the device and the
variant itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from serving.experiments.off_policy import LoggedBandit, Metric
from tailor.core.database.decision_outcomes import per_decision
from tailor.core.database.schema import decisions, shadow_decisions
from tailor.core.events import DEVICES

FEATURES = (
    "behavioral",
    "contextual",
    "predictive",
    "base_score",
    "propensity_percentile",
    "hour",
    "device",
    "variant",  # last: the reward model's one categorical feature
)


@dataclass(frozen=True)
class PolicyLog:
    """The bandit log and the evaluated policy's probabilities on it."""

    log: LoggedBandit
    target: np.ndarray  # (n, k)
    variants: tuple[str, ...]  # the k axis
    decision_ids: tuple[str, ...]


def policy_log(
    engine: Engine,
    experiment_key: str,
    *,
    policy: str,
    shadow: bool,
    control: str,
    variants: tuple[str, ...],
    metric: Metric,
    decided_before: datetime | None = None,
) -> PolicyLog:
    """A shadow `policy` is judged on the control's decisions it decided beside (and
    did not fail on); a live arm on the decisions it served, on-policy. `decided_before` leaves out
    decisions whose attribution window is still open."""
    rewards = per_decision()
    columns = [
        decisions.c.decision_id,
        decisions.c.user_id,
        decisions.c.created_at,
        decisions.c.variant_id,
        decisions.c.decision,
        decisions.c.request,
        getattr(rewards.c, metric).label("reward"),
    ]
    query = select(*columns)
    if shadow:
        query = select(*columns, shadow_decisions.c.action_distribution).join(
            shadow_decisions,
            (shadow_decisions.c.decision_id == decisions.c.decision_id)
            & (shadow_decisions.c.experiment_key == experiment_key)
            & (shadow_decisions.c.arm == policy)
            & shadow_decisions.c.error.is_(None),
        )
    query = query.outerjoin(rewards, rewards.c.decision_id == decisions.c.decision_id).where(
        decisions.c.experiment_key == experiment_key,
        decisions.c.arm == (control if shadow else policy),
    )
    if decided_before is not None:
        query = query.where(decisions.c.created_at < decided_before)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(decisions.c.created_at)).all()
    logged = [
        LoggedDecision(
            decision_id=row.decision_id,
            user_id=row.user_id,
            created_at=row.created_at,
            variant_id=row.variant_id,
            decision=row.decision,
            device=row.request["context"].get("device"),
            reward=row.reward or 0.0,
            target=row.action_distribution if shadow else None,
        )
        for row in rows
    ]
    return policy_arrays(logged, variants)


@dataclass(frozen=True)
class LoggedDecision:
    """One served decision as an estimate reads it."""

    decision_id: str
    user_id: int
    created_at: datetime
    variant_id: str  # served
    decision: dict[str, Any]  # the logged body: candidates with probabilities and scores
    device: str | None  # None: the caller did not know it
    reward: float
    target: dict[str, float] | None  # the evaluated shadow's distribution; None: on-policy


def policy_arrays(rows: list[LoggedDecision], configured: tuple[str, ...]) -> PolicyLog:
    """The k axis is the placement's variants, then any the log holds that the file no
    longer does (a variant removed since still served then)."""
    seen = {c["variant_id"] for row in rows for c in row.decision["candidates"]}
    variants = (*configured, *sorted(seen - set(configured)))
    index = {variant: i for i, variant in enumerate(variants)}
    n, k = len(rows), len(variants)
    logging = np.zeros((n, k))
    target = np.zeros((n, k))
    features = np.full((n, k, len(FEATURES)), np.nan)
    features[:, :, -1] = np.arange(k)
    for i, row in enumerate(rows):
        decision = row.decision
        features[i, :, 4] = _number(decision.get("propensity_percentile"))
        features[i, :, 5] = row.created_at.hour
        if row.device is not None:  # unknown: missing for the reward model
            features[i, :, 6] = DEVICES.index(row.device)
        for candidate in decision["candidates"]:
            j = index[candidate["variant_id"]]
            logging[i, j] = candidate["probability"]
            components = candidate["components"]
            features[i, j, 0] = components["behavioral"]
            features[i, j, 1] = _number(components["contextual"])
            features[i, j, 2] = _number(components["predictive"])
            features[i, j, 3] = candidate["base_score"]
        for variant, probability in (row.target or {}).items():
            target[i, index[variant]] = probability
        if row.target is None:
            target[i] = logging[i]
    log = LoggedBandit(
        users=np.array([row.user_id for row in rows], dtype=np.int64),
        actions=np.array([index[row.variant_id] for row in rows], dtype=np.int64),
        logging=logging,
        rewards=np.array([row.reward for row in rows], dtype=float),
        features=features,
    )
    return PolicyLog(log, target, variants, tuple(row.decision_id for row in rows))


def _number(value: float | None) -> float:
    return np.nan if value is None else float(value)
