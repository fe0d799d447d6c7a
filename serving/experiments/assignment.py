"""Which arm a user is in: GrowthBook's hashing and bucketing, made sticky.

The `growthbook` package's own functions do the arithmetic (`gbhash` version 2,
`inNamespace`, `getBucketRanges`, `chooseVariation`), so a user lands in the arm
GrowthBook's SDKs would put them in for the same seed, namespace, coverage and weights.
Growing coverage never moves anyone: each arm's range starts where it did and only
grows. A weight change or a stopped arm would move users whose hash falls on a new
range, so the first exposure is stored (`StickyAssignments`, as GrowthBook's sticky
bucketing does) and wins over the hash from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from growthbook.core import chooseVariation, gbhash, getBucketRanges, inNamespace

from serving.decision.placements import ArmPlan, ExperimentPlan, Placement

HASH_VERSION = 2  # GrowthBook's current hash (fnv1a32 twice), uniform to 1e-4
HOLDOUT_ARM = "holdout"  # the arm a holdout decision is logged under


@dataclass(frozen=True)
class Exposure:
    """A user's first decision in an experiment: the arm that stays theirs."""

    experiment_key: str
    user_id: int
    arm: str
    bucket: float
    config_version: str
    first_exposed_at: datetime  # aware
    pre_exposure_purchases: float | None  # CUPED's covariate: purchases_30d at exposure

    def __post_init__(self) -> None:
        if self.first_exposed_at.tzinfo is None:
            raise ValueError("Exposure.first_exposed_at must be timezone-aware")


class StickyAssignments(Protocol):
    def arm_of(self, experiment_key: str, user_id: int) -> str | None:
        """The arm the user was first exposed to, if any (raises if it cannot know)."""

    def remember(self, exposure: Exposure) -> None:
        """Keep a first exposure; a later one for the same user and experiment is ignored."""


@dataclass(frozen=True)
class Allocation:
    """Where a decision falls: an experiment's arm, the holdout, or neither."""

    plan: ExperimentPlan | None = None
    arm: ArmPlan | None = None
    bucket: float | None = None
    holdout: bool = False
    sticky: bool = False  # the arm came from the stored first exposure

    @property
    def in_experiment(self) -> bool:
        return self.arm is not None

    @property
    def serves_control(self) -> bool:
        """The champion serves: where shadow arms decide beside it."""
        return self.plan is not None and self.arm is self.plan.arms[0]


NOT_IN_ANY = Allocation()


def user_hash(seed: str, user_id: int) -> float:
    bucket = gbhash(seed, str(user_id), HASH_VERSION)
    assert bucket is not None  # only an unknown hash version gives None
    return bucket


def in_holdout(placement_name: str, placement: Placement, user_id: int) -> bool:
    return placement.holdout > 0 and user_hash(f"holdout:{placement_name}", user_id) < (
        placement.holdout
    )


def arm_by_hash(plan: ExperimentPlan, user_id: int) -> tuple[ArmPlan | None, float]:
    """GrowthBook's choice for a user seen for the first time: the arm, or None when
    outside the namespace or the coverage; and the user's bucket."""
    experiment = plan.experiment
    bucket = user_hash(experiment.hash_seed, user_id)
    namespace = experiment.namespace
    if namespace is not None and not inNamespace(
        str(user_id), (namespace.name, namespace.range[0], namespace.range[1])
    ):
        return None, bucket
    weights = [0.0 if arm.stopped or arm.shadow else arm.weight for arm in experiment.arms]
    total = sum(weights)
    ranges = getBucketRanges(len(weights), experiment.coverage, [w / total for w in weights])
    index = chooseVariation(bucket, ranges)
    return (plan.arms[index] if index >= 0 else None), bucket


def in_share(seed: str, key: str, share: float) -> bool:
    """Whether `key` (a decision id) falls in the first `share` of the seed's hash."""
    point = gbhash(seed, key, HASH_VERSION)
    assert point is not None
    return share >= 1 or point < share


def allocate(
    placement_name: str,
    placement: Placement,
    plans: list[ExperimentPlan],
    user_id: int,
    moment: datetime,
    sticky: StickyAssignments | None,
) -> Allocation:
    """The holdout first (it joins no experiment), then the first running experiment of
    the placement that has the user."""
    if in_holdout(placement_name, placement, user_id):
        return Allocation(holdout=True)
    for plan in plans:
        experiment = plan.experiment
        if not experiment.runs_at(moment):
            continue
        stored = sticky.arm_of(experiment.key, user_id) if sticky is not None else None
        arm = plan.arm(stored) if stored is not None else None
        if arm is not None and not arm.arm.shadow:  # an arm made a shadow serves no one
            return Allocation(plan, arm, user_hash(experiment.hash_seed, user_id), sticky=True)
        arm, bucket = arm_by_hash(plan, user_id)
        if arm is not None:
            return Allocation(plan, arm, bucket)
    return NOT_IN_ANY
