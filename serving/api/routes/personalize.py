"""POST /v1/personalize, and the benchmark's baseline (lookup + predict only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from serving.api.clock_bounds import context_bounds
from serving.api.deps import EngineDep, SettingsDep, snapshot_with
from serving.api.responses import UNPARSABLE
from serving.api.schemas import BaselineRequest
from serving.decision.features import FeatureStoreUnavailable
from serving.decision.schemas import DecisionBody, PersonalizeRequest

router = APIRouter(tags=["decisions"])


@router.post("/v1/personalize", response_model=DecisionBody, responses=UNPARSABLE)
def personalize(body: PersonalizeRequest, engine: EngineDep, settings: SettingsDep) -> DecisionBody:
    """The variant to show this user in this placement, with every reason for it."""
    if body.context.timestamp is not None:
        problem = context_bounds(settings).problem(body.context.timestamp, engine.clock.now())
        if problem is not None:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body", "context", "timestamp"),
                        "msg": problem,
                        "input": body.context.timestamp.isoformat(),
                    }
                ]
            )
    return engine.decide(body, snapshot_with(engine, body.placement))


baseline_router = APIRouter(include_in_schema=False)


@baseline_router.post("/internal/baseline")
def baseline(body: BaselineRequest, engine: EngineDep) -> Any:
    """Feast lookup + predict only: the floor the benchmark compares against."""
    model = engine.model  # read once: a hot swap may replace it meanwhile
    if engine.features is None or model is None:
        return JSONResponse(status_code=503, content={"detail": "no feature store or model"})
    try:
        features = engine.features.user_features(
            body.user_id,
            body.context.device,
            body.context.country,
            int(engine.clock.now().timestamp()),
        )
    except FeatureStoreUnavailable as error:
        return JSONResponse(status_code=503, content={"detail": error.reason})
    return {"propensity": float(model.predict(engine.model_row(features.values, model))[0])}
