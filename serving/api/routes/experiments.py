"""GET /v1/experiments and /v1/experiments/{key}/results."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from serving.api.deps import EngineDep, ServicesDep, SettingsDep
from serving.experiments.results import ExperimentResults, experiment_results
from serving.persistence.experiment_data import arm_users

router = APIRouter(tags=["experiments"])


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
    responses={404: {}, 503: {}},
)
def results(key: str, engine: EngineDep, services: ServicesDep, settings: SettingsDep) -> Any:
    """Per arm users, decisions, impressions, CTR, conversion and revenue per decision;
    each treatment against the control with intervals, p-values, CUPED, an always-valid
    interval, Holm's correction and a sample-ratio check."""
    plan = engine.config.current.placements.experiments.get(key)
    if plan is None:
        return JSONResponse(status_code=404, content={"detail": f"no experiment {key!r}"})
    try:
        data = arm_users(services.database, key)
    except SQLAlchemyError:
        return JSONResponse(
            status_code=503, content={"detail": "the decision database is unreachable; retry"}
        )
    return experiment_results(plan.experiment, data, settings.experiments)
