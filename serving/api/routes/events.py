"""POST /v1/events: live events, each validated on its own, onto the event bus; a
purchase naming its decision is also that decision's conversion."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from serving.api.batches import answer, not_ahead_of, too_many, validated
from serving.api.deps import BusDep, EngineDep, ServicesDep, SettingsDep
from serving.api.responses import BATCH_REFUSED, UNAVAILABLE, UNPARSABLE
from serving.api.schemas import BatchAccepted
from tailor.core.events import Event
from tailor.core.outcome import Outcome

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"])


def conversion_of(event: Event) -> Outcome | None:
    """The outcome a purchase with a decision id stands for; its id derives from the
    event's, so a re-posted event is still one conversion."""
    if event.event_type != "purchase" or event.decision_id is None:
        return None
    return Outcome(
        outcome_id=f"event:{event.event_id}",
        decision_id=event.decision_id,
        type="conversion",
        value=event.price,
        ts=event.ts,
    )


@router.post(
    "/v1/events",
    response_model=BatchAccepted,
    responses=UNPARSABLE | BATCH_REFUSED | UNAVAILABLE,
)
def ingest_events(
    settings: SettingsDep,
    bus: BusDep,
    engine: EngineDep,
    services: ServicesDep,
    body: dict[str, Any] | list[Any] = Body(description="One canonical event, or a list of them."),
) -> Any:
    """Validate each event; the valid ones go to the stream, the others are named."""
    items = body if isinstance(body, list) else [body]
    refused = too_many(len(items), settings.stream.max_batch_events, "events")
    if refused is not None:
        return refused
    check = not_ahead_of(engine.clock.now(), settings.stream.max_future_seconds)
    accepted, errors = validated(items, Event, check)
    if accepted:
        try:
            bus.publish(accepted)
        except Exception:
            log.exception("event stream unavailable")
            return JSONResponse(
                status_code=503,
                content={
                    "detail": "the event stream is unavailable; none of the events "
                    "was accepted, retry the whole batch (events are deduplicated by "
                    "event_id, so a retry never counts one twice)"
                },
            )
        for event in accepted:
            if (conversion := conversion_of(event)) is not None:
                services.outcome_log.record(conversion)
    return answer(len(items), len(accepted), errors)
