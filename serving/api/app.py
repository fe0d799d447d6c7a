"""The FastAPI application: `create_app` wires settings, services and routes once.

The event bus comes from the caller: where accepted events go (a Redis Stream, or the
stream worker's processor run in this process on the embedded profile) is the
pipelines' business, and only the CLI composes the two halves.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from feast import FeatureStore
from prometheus_client import REGISTRY, make_asgi_app

from feature_repo.store import open_store
from serving.api.body_limit import BodyLimit
from serving.api.errors import install_error_handlers
from serving.api.responses import TOO_LARGE
from serving.api.routes import (
    admin,
    decisions,
    events,
    experiments,
    health,
    models,
    monitoring,
    outcomes,
    personalize,
    users,
)
from serving.erasure.users import UserEraser
from serving.monitoring_gauges import MonitoringGauges
from serving.wiring import build_services
from tailor.core.database.migrations import SchemaOutOfDate
from tailor.core.event_stream import EventBus
from tailor.core.live_sessions import session_eraser
from tailor.core.run_records import run_records
from tailor.core.settings import TailorSettings

log = logging.getLogger(__name__)

EventBusFactory = Callable[[TailorSettings, FeatureStore], EventBus]


def create_app(settings: TailorSettings, event_bus: EventBusFactory) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings)
        try:
            services = build_services(settings, store)
        except SchemaOutOfDate as error:
            log.critical("not starting: %s", error)
            raise
        app.state.settings = settings
        app.state.services = services
        app.state.bus = event_bus(settings, store)
        app.state.eraser = UserEraser(services, store, session_eraser(settings, app.state.bus))
        app.state.health_checks = health.health_checks(services, run_records(settings))
        dispatcher = services.dispatcher(settings)
        dispatcher.start()
        gauges = MonitoringGauges(services.database, settings.monitoring.metrics_refresh_seconds)
        REGISTRY.register(gauges)
        gauges.start()
        if settings.serving.watch_placements:
            services.engine.config.watch()
        services.models.watch()
        yield
        REGISTRY.unregister(gauges)
        gauges.close()
        dispatcher.stop()
        for check in app.state.health_checks:
            check.close()
        app.state.bus.close()
        services.close()

    app = FastAPI(
        title="Tailor",
        version="0.1.0",
        description="Real-time personalization decisions from a Feast feature store.",
        lifespan=lifespan,
        responses=TOO_LARGE,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.serving.max_body_bytes)
    app.mount("/metrics", make_asgi_app())
    install_error_handlers(app)
    for routes in (
        personalize,
        decisions,
        events,
        outcomes,
        experiments,
        monitoring,
        models,
        health,
        admin,
        users,
    ):
        app.include_router(routes.router)
    if settings.serving.baseline_endpoint:
        app.include_router(personalize.baseline_router)
    return app
