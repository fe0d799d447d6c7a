"""What route handlers need, as FastAPI dependencies: settings, the assembled services,
the event bus, run records, the user eraser, the admin key check and the placement
lookup.

The lifespan (`serving.api.app`) puts the process's objects on `app.state`; handlers
declare them with these `Annotated` types instead of reaching into `request.app`.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from serving.api.health_checks import BoundedCheck
from serving.decision.config_holder import ConfigSnapshot
from serving.decision.engine import DecisionEngine
from serving.erasure.users import UserEraser
from serving.wiring import Services
from tailor.core.event_stream import EventBus
from tailor.core.settings import TailorSettings


def _settings(request: Request) -> TailorSettings:
    return request.app.state.settings


def _services(request: Request) -> Services:
    return request.app.state.services


def _engine(services: Annotated[Services, Depends(_services)]) -> DecisionEngine:
    return services.engine


def _bus(request: Request) -> EventBus:
    return request.app.state.bus


def _health_checks(request: Request) -> list[BoundedCheck]:
    return request.app.state.health_checks


def _eraser(request: Request) -> UserEraser:
    return request.app.state.eraser


SettingsDep = Annotated[TailorSettings, Depends(_settings)]
ServicesDep = Annotated[Services, Depends(_services)]
EngineDep = Annotated[DecisionEngine, Depends(_engine)]
BusDep = Annotated[EventBus, Depends(_bus)]
HealthChecksDep = Annotated[list[BoundedCheck], Depends(_health_checks)]
EraserDep = Annotated[UserEraser, Depends(_eraser)]

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)


def require_admin_key(
    settings: SettingsDep, key: Annotated[str | None, Security(API_KEY_HEADER)]
) -> None:
    """Admin routes change what users see or read who opted out: with no key configured
    they stay closed (403); a missing or wrong key is a 401."""
    configured = settings.serving.admin_api_key
    if configured is None:
        raise HTTPException(
            403, "the admin API is closed: set TAILOR_SERVING__ADMIN_API_KEY to open it"
        )
    # Bytes: compare_digest refuses non-ASCII text, and a header may carry any byte.
    if key is None or not secrets.compare_digest(
        key.encode(), configured.get_secret_value().encode()
    ):
        raise HTTPException(401, "missing or wrong X-API-Key header")


class UnknownPlacement(LookupError):
    """A request names a placement the running configuration does not have."""

    def __init__(self, placement: str, known: list[str]) -> None:
        super().__init__(f"unknown placement {placement!r}; known placements: {known}")
        self.placement = placement


def snapshot_with(engine: DecisionEngine, placement: str) -> ConfigSnapshot:
    """The running configuration, checked to hold `placement`: the caller decides with
    this snapshot, so a reload in between cannot take the placement away."""
    snapshot = engine.config.current
    known = snapshot.placements.config.placements
    if placement not in known:
        raise UnknownPlacement(placement, sorted(known))
    return snapshot
