"""GET /v1/experiments and an experiment's results, off-policy estimates and shadow report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from serving.api.deps import EngineDep, ServicesDep, SettingsDep
from serving.api.responses import NOT_FOUND, UNAVAILABLE, refusal
from serving.decision.engine import DecisionEngine
from serving.decision.placements import ExperimentPlan, Placement
from serving.experiment_reports import (
    NoDecisions,
    OffPolicyReport,
    ShadowReport,
    UnknownPolicy,
    attribution_cutoff,
    off_policy_report,
    shadow_report,
)
from serving.experiments.config import KEY_PATTERN
from serving.experiments.off_policy import Metric
from serving.experiments.results import ExperimentResults, experiment_results
from serving.persistence.experiment_data import arm_users

router = APIRouter(tags=["experiments"])

# The examples are the shipped configuration's: generated requests (the fuzz test) and
# the docs' "try it out" reach a real experiment with them.
ExperimentKey = Annotated[
    str, PathParam(description="As /v1/experiments lists it.", examples=["homepage_policies"])
]


@router.get("/v1/experiments")
def experiments(engine: EngineDep) -> list[dict[str, Any]]:
    """Every experiment of the running configuration, and whether it runs now."""
    now = engine.clock.now()
    return [
        plan.experiment.model_dump(mode="json") | {"running_now": plan.experiment.runs_at(now)}
        for plan in engine.config.current.placements.experiments.values()
    ]


@router.get(
    "/v1/experiments/{key}/results",
    response_model=ExperimentResults,
    responses=NOT_FOUND | UNAVAILABLE,
)
def results(
    key: ExperimentKey, engine: EngineDep, services: ServicesDep, settings: SettingsDep
) -> Any:
    """Per arm users, decisions, impressions, CTR, conversion and revenue per decision;
    each treatment against the control with intervals, p-values, CUPED, an always-valid
    interval, Holm's correction and a sample-ratio check."""
    plan = engine.config.current.placements.experiments.get(key)
    if plan is None:
        return _not_found(key)
    try:
        data = arm_users(services.database, key)
    except SQLAlchemyError:
        return _unreachable()
    return experiment_results(plan.experiment, data, settings.experiments)


def _unreachable() -> JSONResponse:
    return JSONResponse(
        status_code=503, content={"detail": "the decision database is unreachable; retry"}
    )


def _not_found(key: str) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": f"no experiment {key!r}"})


def _experiment(engine: DecisionEngine, key: str) -> tuple[ExperimentPlan, Placement] | None:
    loaded = engine.config.current.placements
    plan = loaded.experiments.get(key)
    if plan is None:
        return None
    return plan, loaded.config.placements[plan.experiment.placement]


MetricQuery = Query(
    "conversion", description="The reward: click, conversion (0/1 per decision) or revenue."
)


@router.get(
    "/v1/experiments/{key}/ope",
    response_model=OffPolicyReport,
    responses=NOT_FOUND
    | {409: refusal("The experiment has no decisions to judge the arm on yet.")}
    | UNAVAILABLE,
)
def off_policy(
    key: ExperimentKey,
    engine: EngineDep,
    services: ServicesDep,
    settings: SettingsDep,
    policy: str = Query(
        pattern=KEY_PATTERN, max_length=100, description="The arm to judge.", examples=["champion"]
    ),
    metric: Metric = MetricQuery,
) -> Any:
    """IPS, self-normalized IPS and doubly robust estimates of an arm's value per
    decision, from the experiment's log, with bootstrap intervals, support and
    effective sample size. A shadow arm is judged on the decisions it saw."""
    found = _experiment(engine, key)
    if found is None:
        return _not_found(key)
    plan, placement = found
    cutoff = attribution_cutoff(engine.clock.now(), metric, settings.outcomes)
    try:
        return off_policy_report(
            services.database, plan, placement, policy, metric, settings.experiments, cutoff
        )
    except UnknownPolicy as error:
        return JSONResponse(status_code=404, content={"detail": str(error)})
    except NoDecisions as error:
        return JSONResponse(status_code=409, content={"detail": str(error)})
    except SQLAlchemyError:
        return _unreachable()


@router.get(
    "/v1/experiments/{key}/shadow",
    response_model=ShadowReport,
    responses=NOT_FOUND | UNAVAILABLE,
)
def shadow(
    key: ExperimentKey,
    engine: EngineDep,
    services: ServicesDep,
    settings: SettingsDep,
    metric: Metric = MetricQuery,
) -> Any:
    """Per shadow arm: agreement with the champion, disagreements per variant, its
    latency, and the doubly robust estimate of its lift over what was served."""
    found = _experiment(engine, key)
    if found is None:
        return _not_found(key)
    plan, placement = found
    cutoff = attribution_cutoff(engine.clock.now(), metric, settings.outcomes)
    try:
        return shadow_report(
            services.database, plan, placement, metric, settings.experiments, cutoff
        )
    except SQLAlchemyError:
        return _unreachable()
