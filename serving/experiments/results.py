"""An experiment's results: per arm what its users did, and each treatment against the
control on every metric (`GET /v1/experiments/{key}/results`, `tailor experiments
report KEY`).

Metrics are ratios of per-user sums, users being the unit of randomisation:
- `ctr`: clicked decisions / impressed decisions;
- `conversion_rate`: converted decisions / decisions;
- `revenue_per_decision`: conversion value / decisions.

CUPED's covariate is the user's purchases in the 30 days before the first exposure
(the `purchases_30d` feature when first exposed; 0 for a user without history).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from serving.experiments.config import Experiment
from serving.experiments.statistics import (
    Interval,
    Lift,
    RatioSample,
    compare,
    holm,
    sample_ratio_check,
)
from tailor.core.settings import ExperimentSettings

METRICS: dict[str, tuple[str, str]] = {
    "ctr": ("clicks", "impressions"),
    "conversion_rate": ("conversions", "decisions"),
    "revenue_per_decision": ("revenue", "decisions"),
}


@dataclass(frozen=True)
class ArmUsers:
    """Per-user sums of one arm, aligned arrays."""

    users: np.ndarray
    decisions: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    conversions: np.ndarray
    revenue: np.ndarray
    pre_exposure_purchases: np.ndarray  # NaN where unknown


class IntervalBody(BaseModel):
    low: float
    high: float

    @classmethod
    def of(cls, interval: Interval) -> IntervalBody:
        return cls(low=interval.low, high=interval.high)


class LiftBody(BaseModel):
    control: float
    treatment: float
    absolute: float = Field(description="treatment - control")
    absolute_ci: IntervalBody
    relative: float = Field(description="treatment / control - 1")
    relative_ci: IntervalBody
    p_value: float = Field(description="Two-sided, for no difference.")
    p_value_holm: float = Field(description="Holm-adjusted across this arm's metrics.")

    @classmethod
    def of(cls, lift: Lift, adjusted: float) -> LiftBody:
        return cls(
            control=lift.control,
            treatment=lift.treatment,
            absolute=lift.absolute,
            absolute_ci=IntervalBody.of(lift.absolute_ci),
            relative=lift.relative,
            relative_ci=IntervalBody.of(lift.relative_ci),
            p_value=lift.p_value,
            p_value_holm=adjusted,
        )


class MetricComparison(BaseModel):
    metric: str
    lift: LiftBody
    cuped: LiftBody | None = Field(description="Adjusted by pre-exposure purchases.")
    variance_reduction: float | None = Field(
        description="Share of the lift's variance CUPED removed."
    )
    sequential_ci: IntervalBody = Field(
        description="Always-valid interval of the absolute lift (CUPED's when available): "
        "may be read at any time while the experiment runs."
    )


class ArmComparison(BaseModel):
    arm: str
    control: str
    metrics: list[MetricComparison]


class ArmSummary(BaseModel):
    arm: str
    users: int
    decisions: int
    impressions: int
    clicks: int
    conversions: int
    revenue: float
    ctr: float | None
    conversion_rate: float | None
    revenue_per_decision: float | None


class SampleRatioBody(BaseModel):
    observed: list[int]
    expected: list[float]
    p_value: float
    mismatch: bool = Field(description="Users are not split as the weights say: do not trust.")


class ExperimentResults(BaseModel):
    key: str
    placement: str
    status: str
    alpha: float
    arms: list[ArmSummary]
    comparisons: list[ArmComparison]
    sample_ratio: SampleRatioBody
    notes: list[str]


def _sample(users: ArmUsers, metric: str) -> RatioSample:
    numerator, denominator = METRICS[metric]
    return RatioSample(
        getattr(users, numerator),
        getattr(users, denominator),
        np.nan_to_num(users.pre_exposure_purchases, nan=0.0),
    )


def _rate(users: ArmUsers, metric: str) -> float | None:
    numerator, denominator = METRICS[metric]
    total = float(getattr(users, denominator).sum())
    return float(getattr(users, numerator).sum()) / total if total else None


_EMPTY = ArmUsers(*(np.zeros(0) for _ in range(7)))


def _summary(arm: str, users: ArmUsers) -> ArmSummary:
    return ArmSummary(
        arm=arm,
        users=len(users.users),
        decisions=int(users.decisions.sum()),
        impressions=int(users.impressions.sum()),
        clicks=int(users.clicks.sum()),
        conversions=int(users.conversions.sum()),
        revenue=float(users.revenue.sum()),
        **{metric: _rate(users, metric) for metric in METRICS},
    )


def _comparison(
    control: str, treatment: str, data: dict[str, ArmUsers], settings: ExperimentSettings
) -> tuple[ArmComparison, list[str]]:
    notes, compared = [], []
    for metric in METRICS:
        samples = [_sample(data.get(arm, _EMPTY), metric) for arm in (control, treatment)]
        if all(sample.estimable for sample in samples):
            compared.append(
                (metric, compare(*samples, settings.alpha, settings.sequential_tuning_users))
            )
        else:
            notes.append(f"{treatment} vs {control}: too few users or no {metric} denominator yet")
    plain = holm([comparison.plain.p_value for _, comparison in compared])
    cuped = holm([c.cuped.p_value if c.cuped else math.nan for _, c in compared])
    metrics = [
        MetricComparison(
            metric=metric,
            lift=LiftBody.of(comparison.plain, plain[index]),
            cuped=LiftBody.of(comparison.cuped, cuped[index]) if comparison.cuped else None,
            variance_reduction=comparison.variance_reduction,
            sequential_ci=IntervalBody.of(comparison.sequential_ci),
        )
        for index, (metric, comparison) in enumerate(compared)
    ]
    return ArmComparison(arm=treatment, control=control, metrics=metrics), notes


def experiment_results(
    experiment: Experiment, data: dict[str, ArmUsers], settings: ExperimentSettings
) -> ExperimentResults:
    """`data` are the exposed users by arm (`experiment_data.arm_users`)."""
    arms = [arm.key for arm in experiment.live_arms]
    unknown = sorted(set(data) - set(arms))
    notes = [f"users in arms no longer configured, left out: {unknown}"] if unknown else []
    comparisons = []
    for treatment in arms[1:]:
        comparison, found = _comparison(arms[0], treatment, data, settings)
        comparisons.append(comparison)
        notes.extend(found)
    check = sample_ratio_check(
        [len(data.get(arm, _EMPTY).users) for arm in arms],
        [arm.weight for arm in experiment.live_arms],
        settings.srm_alpha,
    )
    if check.mismatch:
        notes.append(
            f"sample ratio mismatch (p={check.p_value:.2g}): users are not split as the "
            "weights say; find the cause before reading any lift"
        )
    return ExperimentResults(
        key=experiment.key,
        placement=experiment.placement,
        status=experiment.status,
        alpha=settings.alpha,
        arms=[_summary(arm, data.get(arm, _EMPTY)) for arm in arms],
        comparisons=comparisons,
        sample_ratio=SampleRatioBody(
            observed=check.observed,
            expected=check.expected,
            p_value=check.p_value,
            mismatch=check.mismatch,
        ),
        notes=notes,
    )
