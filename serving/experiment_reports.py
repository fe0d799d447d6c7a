"""Off-policy estimates and the shadow report of an experiment, read from the decision
database: what `GET /v1/experiments/{key}/ope|shadow` and `tailor experiments
ope|shadow` answer.

Only decisions whose attribution window has closed count (`decided_before`): a
decision from a minute ago has not had its chance to convert yet, and counting it
would pull every estimate down.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from serving.decision.placements import ExperimentPlan, Placement
from serving.experiments.off_policy import (
    Metric,
    OffPolicyEstimate,
    doubly_robust_lift,
    estimate,
    reward_predictions,
    support_share,
)
from serving.experiments.results import IntervalBody
from serving.persistence.ope_data import PolicyLog, policy_log
from serving.persistence.shadow_data import shadow_counts
from tailor.core.settings import ExperimentSettings, OutcomeSettings


class UnknownPolicy(ValueError):
    """Not an arm of the experiment."""


class NoDecisions(ValueError):
    """Nothing logged yet that the estimate could read."""


class OffPolicyReport(OffPolicyEstimate):
    experiment: str
    policy: str
    shadow: bool
    metric: Metric
    decided_before: datetime | None


class Disagreement(BaseModel):
    champion_variant: str
    shadow_variant: str
    decisions: int


class ShadowLift(BaseModel):
    metric: Metric
    absolute: float
    absolute_interval: IntervalBody
    relative: float | None
    relative_interval: IntervalBody | None
    support: float
    decisions: int


class ShadowArmReport(BaseModel):
    arm: str
    evaluated: int = Field(description="Decisions the shadow arm decided beside.")
    failed: dict[str, int] = Field(description="Decisions it could not judge, by cause.")
    agreement: float | None = Field(description="Share where it picks the champion's best.")
    disagreements: list[Disagreement]
    disagreed_by_variant: dict[str, int] = Field(
        description="Disagreements by the variant the shadow would have served."
    )
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    lift: ShadowLift | None = Field(
        description="Doubly robust estimate of its lift over what was served."
    )
    note: str | None = None


class ShadowReport(BaseModel):
    experiment: str
    arms: list[ShadowArmReport]


def attribution_cutoff(now: datetime, metric: Metric, settings: OutcomeSettings) -> datetime:
    """Decisions before this have had their whole window for the metric."""
    seconds = (
        settings.click_window_seconds if metric == "click" else settings.conversion_window_seconds
    )
    return now - timedelta(seconds=seconds)


def _log(
    database: Engine,
    plan: ExperimentPlan,
    placement: Placement,
    policy: str,
    metric: Metric,
    decided_before: datetime | None,
) -> tuple[PolicyLog, bool]:
    arm = plan.arm(policy)
    if arm is None:
        known = [a.arm.key for a in plan.arms]
        raise UnknownPolicy(f"{policy!r} is not an arm of {plan.experiment.key}; known: {known}")
    data = policy_log(
        database,
        plan.experiment.key,
        policy=policy,
        shadow=arm.arm.shadow,
        control=plan.experiment.control.key,
        variants=tuple(v.id for v in placement.variants),
        metric=metric,
        decided_before=decided_before,
    )
    if data.log.size == 0:
        where = "beside which it decided" if arm.arm.shadow else "it served"
        raise NoDecisions(
            f"no decisions of {plan.experiment.key} {where} with closed attribution windows "
            f"yet for {policy!r}"
        )
    return data, arm.arm.shadow


def off_policy_report(
    database: Engine,
    plan: ExperimentPlan,
    placement: Placement,
    policy: str,
    metric: Metric,
    settings: ExperimentSettings,
    decided_before: datetime | None,
) -> OffPolicyReport:
    data, shadow = _log(database, plan, placement, policy, metric, decided_before)
    result = estimate(
        data.log,
        data.target,
        metric,
        alpha=settings.alpha,
        resamples=settings.ope_bootstrap,
        folds=settings.ope_folds,
        min_support=settings.ope_min_support,
    )
    return OffPolicyReport(
        **result.model_dump(),
        experiment=plan.experiment.key,
        policy=policy,
        shadow=shadow,
        metric=metric,
        decided_before=decided_before,
    )


def _percentile(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def shadow_report(
    database: Engine,
    plan: ExperimentPlan,
    placement: Placement,
    metric: Metric,
    settings: ExperimentSettings,
    decided_before: datetime | None,
) -> ShadowReport:
    counts = shadow_counts(database, plan.experiment.key)
    arms = []
    for arm in plan.experiment.shadow_arms:
        seen = counts.get(arm.key)
        if seen is None:
            arms.append(
                ShadowArmReport(
                    arm=arm.key,
                    evaluated=0,
                    failed={},
                    agreement=None,
                    disagreements=[],
                    disagreed_by_variant={},
                    latency_ms_p50=None,
                    latency_ms_p99=None,
                    lift=None,
                    note="no shadow decisions logged yet",
                )
            )
            continue
        by_variant: dict[str, int] = {}
        for (_, shadow_variant), decisions in seen.disagreements.items():
            by_variant[shadow_variant] = by_variant.get(shadow_variant, 0) + decisions
        lift, note = _shadow_lift(
            database, plan, placement, arm.key, metric, settings, decided_before
        )
        arms.append(
            ShadowArmReport(
                arm=arm.key,
                evaluated=seen.evaluated,
                failed=seen.failed,
                agreement=seen.agreed / seen.evaluated if seen.evaluated else None,
                disagreements=[
                    Disagreement(champion_variant=c, shadow_variant=s, decisions=n)
                    for (c, s), n in sorted(seen.disagreements.items(), key=lambda kv: -kv[1])
                ],
                disagreed_by_variant=by_variant,
                latency_ms_p50=_percentile(seen.latency_ms, 50),
                latency_ms_p99=_percentile(seen.latency_ms, 99),
                lift=lift,
                note=note,
            )
        )
    return ShadowReport(experiment=plan.experiment.key, arms=arms)


def _shadow_lift(
    database: Engine,
    plan: ExperimentPlan,
    placement: Placement,
    arm: str,
    metric: Metric,
    settings: ExperimentSettings,
    decided_before: datetime | None,
) -> tuple[ShadowLift | None, str | None]:
    try:
        data, _ = _log(database, plan, placement, arm, metric, decided_before)
    except NoDecisions as error:
        return None, str(error)
    log = data.log
    predicted = reward_predictions(log, metric, settings.ope_folds)
    lift = doubly_robust_lift(
        log, data.target, predicted, alpha=settings.alpha, resamples=settings.ope_bootstrap
    )
    support = support_share(log.logging, data.target)
    note = None
    if support < settings.ope_min_support:
        note = (
            f"support {support:.1%}: the champion never explored where the shadow differs; "
            "the lift there is the reward model's extrapolation. Turn on exploration."
        )
    return (
        ShadowLift(
            metric=metric,
            absolute=lift.absolute,
            absolute_interval=IntervalBody.of(lift.absolute_ci),
            relative=lift.relative,
            relative_interval=IntervalBody.of(lift.relative_ci) if lift.relative_ci else None,
            support=support,
            decisions=log.size,
        ),
        note,
    )
