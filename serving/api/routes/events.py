"""POST /v1/events: live events, each validated on its own, onto the event bus."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from serving.api.deps import BusDep, EngineDep, SettingsDep
from serving.api.schemas import EventError, EventsAccepted
from tailor.core.events import Event

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"])


@router.post(
    "/v1/events",
    response_model=EventsAccepted,
    responses={422: {"model": EventsAccepted}, 413: {}, 503: {}},
)
def ingest_events(
    settings: SettingsDep,
    bus: BusDep,
    engine: EngineDep,
    body: dict[str, Any] | list[Any] = Body(description="One canonical event, or a list of them."),
) -> Any:
    """Validate each event; the valid ones go to the stream, the others are named."""
    items = body if isinstance(body, list) else [body]
    limit = settings.stream.max_batch_events
    if len(items) > limit:
        return JSONResponse(
            status_code=413,
            content={
                "detail": f"{len(items)} events in one request; send at most {limit} per batch"
            },
        )
    accepted: list[Event] = []
    errors: list[EventError] = []
    now = engine.clock.now()
    allowed_ahead = settings.stream.max_future_seconds
    latest = now + timedelta(seconds=allowed_ahead)
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
                    f"server's clock, more than the {allowed_ahead} s allowed "
                    "(stream.max_future_seconds); check the sender's clock",
                )
            )
            continue
        accepted.append(event)
    if accepted:
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
    result = EventsAccepted(
        accepted=len(accepted), rejected=len(items) - len(accepted), errors=errors
    )
    if not accepted:
        return JSONResponse(status_code=422, content=result.model_dump())
    return result
