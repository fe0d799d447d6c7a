"""The FastAPI application: `create_app(settings)` wires config, store and model once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from feast import FeatureStore
from prometheus_client import make_asgi_app
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Engine

from pipelines.events import Event
from pipelines.feature_store import open_store
from pipelines.model_artifact import ModelNotFoundError, load_artifact
from pipelines.run_records import last_success
from pipelines.schedule import run_records
from pipelines.settings import TailorSettings
from pipelines.streaming.bus import EventBus
from pipelines.streaming.wiring import event_bus
from serving.admin import admin_router
from serving.config_holder import PlacementsHolder
from serving.decision_log import DecisionLog, DecisionLogUnavailable
from serving.engine import DecisionEngine, feature_service_for
from serving.features import FeatureStoreUnavailable, OnlineFeatures
from serving.opt_outs import OptOutList, OptOutsUnavailable
from serving.outbox import Outbox, OutboxUnavailable, TriggerDispatcher
from serving.schemas import (
    DecisionBody,
    EventError,
    EventsAccepted,
    FeatureStoreHealth,
    HealthBody,
    LoggedDecisionBody,
    PersonalizeRequest,
    RequestContextBody,
)
from serving.storage import DatabaseUnavailable, database_engine, open_database
from serving.trigger_spool import TriggerSpool

log = logging.getLogger(__name__)


def _decision_database(settings: TailorSettings) -> Engine:
    """A database that is down at start-up degrades decisions (default content until
    the opt-out list is read, triggers not recorded, the log buffered), never stops them."""
    try:
        return open_database(settings.decision_database_url)
    except DatabaseUnavailable as error:
        log.error("%s Serving anyway; the decision log buffers until it answers.", error)
        return database_engine(settings.decision_database_url)


def _online_features(
    settings: TailorSettings, store: FeatureStore | None, service: str, categories: list[str]
) -> OnlineFeatures | None:
    try:
        features = OnlineFeatures(
            store or open_store(settings),
            service,
            budget_ms=settings.serving.feature_budget_ms,
            breaker_seconds=settings.serving.feature_breaker_seconds,
            breaker_failures=settings.serving.feature_breaker_failures,
        )
    except Exception:
        log.exception("feature store unavailable at start-up; decisions fall back")
        return None
    try:
        features.warm_up(categories)
    except Exception:
        log.warning("online store not answering at start-up; reads will retry", exc_info=True)
    return features


def build_engine(
    settings: TailorSettings,
    store: FeatureStore | None = None,
    database: Engine | None = None,
) -> DecisionEngine:
    """Invalid placements stop start-up; a missing model, store or database only
    degrades decisions."""
    try:
        model = load_artifact(settings.models_dir)
    except ModelNotFoundError as error:
        log.warning("serving without a model: %s", error)
        model = None
    config = PlacementsHolder(settings.serving.placements_file, DecisionEngine.symbols_for(model))
    database = database or _decision_database(settings)
    decisions = settings.decisions
    webhook = str(decisions.webhook_url) if decisions.webhook_url else None
    outbox = Outbox(database, webhook)
    return DecisionEngine(
        config,
        _online_features(settings, store, feature_service_for(model), config.current.categories),
        model,
        decision_log=DecisionLog(
            database,
            flush_seconds=decisions.log_flush_seconds,
            batch_size=decisions.log_batch_size,
            queue_max=decisions.log_queue_max,
            spill_dir=settings.decision_spill_dir,
        ),
        outbox=outbox,
        trigger_spool=TriggerSpool(outbox, settings.trigger_spool_dir),
        opt_outs=OptOutList(database, decisions.opt_out_refresh_seconds),
        explain_top_features=settings.serving.explain_top_features,
    )


def _dispatcher(
    settings: TailorSettings, engine: DecisionEngine, database: Engine
) -> TriggerDispatcher:
    decisions = settings.decisions
    spool = engine.trigger_spool
    return TriggerDispatcher(
        database,
        replay_spooled=spool.replay if spool is not None else None,
        timeout_seconds=decisions.webhook_timeout_seconds,
        max_attempts=decisions.webhook_max_attempts,
        backoff_seconds=decisions.webhook_backoff_seconds,
        interval_seconds=decisions.dispatch_interval_seconds,
    )


class BaselineRequest(BaseModel):
    user_id: int = Field(ge=1)
    context: RequestContextBody


def create_app(settings: TailorSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings)
        database = _decision_database(settings)
        engine = app.state.engine = build_engine(settings, store, database)
        app.state.bus = event_bus(settings, store)
        app.state.run_records = run_records(settings)  # one client, not one per /health
        dispatcher = _dispatcher(settings, engine, database)
        dispatcher.start()
        if settings.serving.watch_placements:
            engine.config.watch()
        yield
        dispatcher.stop()
        app.state.bus.close()
        engine.close()
        database.dispose()

    app = FastAPI(
        title="Tailor",
        version="0.1.0",
        description="Real-time personalization decisions from a Feast feature store.",
        lifespan=lifespan,
    )
    app.mount("/metrics", make_asgi_app())
    app.include_router(admin_router(settings))

    @app.exception_handler(OptOutsUnavailable)
    @app.exception_handler(OutboxUnavailable)
    def database_down(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content={"detail": f"the decision database is unreachable ({error}); retry later"},
        )

    def engine_of(request: Request) -> DecisionEngine:
        return request.app.state.engine

    @app.post("/v1/personalize", response_model=DecisionBody)
    def personalize(body: PersonalizeRequest, request: Request) -> DecisionBody:
        engine = engine_of(request)
        snapshot = engine.config.current
        known = snapshot.placements.config.placements
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
        return engine.decide(body, snapshot)

    @app.get(
        "/v1/decisions/{decision_id}",
        response_model=LoggedDecisionBody,
        responses={404: {}, 503: {}},
    )
    def logged_decision(decision_id: str, request: Request) -> Any:
        """A decision as logged: its request, its full response and the versions used."""
        decision_log = engine_of(request).decision_log
        try:
            row = decision_log.get(decision_id) if decision_log else None
        except DecisionLogUnavailable:
            return JSONResponse(
                status_code=503,
                content={"detail": "the decision log database is unreachable; retry later"},
            )
        if row is None:
            return JSONResponse(status_code=404, content={"detail": "no such decision"})
        return row

    @app.post(
        "/v1/events",
        response_model=EventsAccepted,
        responses={422: {"model": EventsAccepted}, 413: {}, 503: {}},
    )
    def ingest_events(
        request: Request,
        body: dict[str, Any] | list[Any] = Body(
            description="One canonical event, or a list of them."
        ),
    ) -> Any:
        """Validate each event; the valid ones go to the stream, the others are named."""
        items = body if isinstance(body, list) else [body]
        if len(items) > settings.stream.max_batch_events:
            return JSONResponse(
                status_code=413,
                content={
                    "detail": f"{len(items)} events in one request; "
                    f"send at most {settings.stream.max_batch_events} per batch"
                },
            )
        accepted: list[Event] = []
        errors: list[EventError] = []
        now = datetime.now(UTC)
        latest = now + timedelta(seconds=settings.stream.max_future_seconds)
        for index, item in enumerate(items):
            try:
                event = Event.model_validate(item)
            except ValidationError as error:
                errors.extend(
                    EventError(
                        index=index,
                        field=".".join(str(part) for part in issue["loc"]) or "<event>",
                        message=issue["msg"],
                    )
                    for issue in error.errors()
                )
                continue
            if event.ts > latest:  # one such event would hide the user's later ones
                errors.append(
                    EventError(
                        index=index,
                        field="ts",
                        message=f"is {(event.ts - now).total_seconds():.0f} s ahead of the "
                        f"server's clock, more than the {settings.stream.max_future_seconds} s "
                        "allowed (stream.max_future_seconds); check the sender's clock",
                    )
                )
                continue
            accepted.append(event)
        rejected = len(items) - len(accepted)
        if accepted:
            bus: EventBus = request.app.state.bus
            try:
                bus.publish(accepted)
            except Exception:
                log.exception("event stream unavailable")
                return JSONResponse(
                    status_code=503,
                    content={
                        "detail": "the event stream is unavailable; none of the events "
                        "was accepted, retry the whole batch"
                    },
                )
        result = EventsAccepted(accepted=len(accepted), rejected=rejected, errors=errors)
        if not accepted:
            return JSONResponse(status_code=422, content=result.model_dump())
        return result

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
            except FeatureStoreUnavailable as error:
                store_health = FeatureStoreHealth(reachable=False, error=error.reason)
        healthy = store_health.reachable and engine.model is not None
        try:
            last_run = last_success(request.app.state.run_records)
        except Exception:  # the run records live in Redis under the redis profile
            log.warning("cannot read materialization records", exc_info=True)
            last_run = None
        return HealthBody(
            status="ok" if healthy else "degraded",
            profile=settings.profile,
            model_version=engine.model.version if engine.model else None,
            feature_store=store_health,
            config_version=engine.config.current.version,
            last_materialization=last_run.finished_at if last_run else None,
            config_reload_rejected=engine.config.last_rejection is not None,
            decision_log_backlog=engine.decision_log.backlog if engine.decision_log else 0,
        )

    if settings.serving.baseline_endpoint:

        @app.post("/internal/baseline", include_in_schema=False)
        def baseline(body: BaselineRequest, request: Request) -> Any:
            """Feast lookup + predict only: the floor the benchmark compares against."""
            engine = engine_of(request)
            assert engine.features is not None and engine.model is not None
            try:
                features = engine.features.user_features(
                    body.user_id,
                    body.context.device,
                    body.context.country,
                    int(datetime.now(UTC).timestamp()),
                )
            except FeatureStoreUnavailable as error:
                return JSONResponse(status_code=503, content={"detail": error.reason})
            return {"propensity": float(engine.model.predict(engine.model_row(features.values))[0])}

    return app
