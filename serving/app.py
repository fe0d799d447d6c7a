"""The FastAPI application: `create_app(settings)` wires config, store and model once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import make_asgi_app
from pydantic import BaseModel, Field

from pipelines.feature_store import open_store
from pipelines.model_artifact import ModelNotFoundError, load_artifact
from pipelines.settings import TailorSettings
from serving.engine import DecisionEngine
from serving.features import OnlineFeatures
from serving.placements import load_placements
from serving.schemas import (
    DecisionBody,
    FeatureStoreHealth,
    HealthBody,
    PersonalizeRequest,
    RequestContextBody,
)

log = logging.getLogger(__name__)


def build_engine(settings: TailorSettings) -> DecisionEngine:
    """Invalid placements stop start-up; a missing model or store only degrades decisions."""
    placements = load_placements(settings.serving.placements_file)
    try:
        model = load_artifact(settings.models_dir)
    except ModelNotFoundError as error:
        log.warning("serving without a model: %s", error)
        model = None
    service = model.feature_service if model else "personalization_v1"
    try:
        features = OnlineFeatures(open_store(settings), service)
    except Exception:
        log.exception("feature store unavailable at start-up; decisions fall back")
        features = None
    return DecisionEngine(placements, features, model)


class BaselineRequest(BaseModel):
    user_id: int = Field(ge=1)
    context: RequestContextBody


def create_app(settings: TailorSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = build_engine(settings)
        yield

    app = FastAPI(
        title="Tailor",
        version="0.1.0",
        description="Real-time personalization decisions from a Feast feature store.",
        lifespan=lifespan,
    )
    app.mount("/metrics", make_asgi_app())

    def engine_of(request: Request) -> DecisionEngine:
        return request.app.state.engine

    @app.post("/v1/personalize", response_model=DecisionBody)
    def personalize(body: PersonalizeRequest, request: Request) -> DecisionBody:
        engine = engine_of(request)
        known = engine.placements.config.placements
        if body.placement not in known:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body", "placement"),
                        "msg": f"unknown placement {body.placement!r}; "
                        f"known placements: {sorted(known)}",
                        "input": body.placement,
                    }
                ]
            )
        return engine.decide(body)

    @app.get("/health", response_model=HealthBody)
    def health(request: Request) -> HealthBody:
        engine = engine_of(request)
        store_health = FeatureStoreHealth(reachable=False, error="not connected at start-up")
        if engine.features is not None:
            try:
                engine.features.user_features(
                    0, "desktop", "US", int(datetime.now(UTC).timestamp())
                )
                store_health = FeatureStoreHealth(reachable=True)
            except Exception as error:
                store_health = FeatureStoreHealth(reachable=False, error=type(error).__name__)
        healthy = store_health.reachable and engine.model is not None
        return HealthBody(
            status="ok" if healthy else "degraded",
            profile=settings.profile,
            model_version=engine.model.version if engine.model else None,
            feature_store=store_health,
            config_version=engine.placements.version,
        )

    if settings.serving.baseline_endpoint:

        @app.post("/internal/baseline", include_in_schema=False)
        def baseline(body: BaselineRequest, request: Request) -> dict[str, float]:
            """Feast lookup + predict only: the floor the benchmark compares against."""
            engine = engine_of(request)
            assert engine.features is not None and engine.model is not None
            features = engine.features.user_features(
                body.user_id,
                body.context.device,
                body.context.country,
                int(datetime.now(UTC).timestamp()),
            )
            return {"propensity": float(engine.model.predict(engine.model_row(features))[0])}

    return app
