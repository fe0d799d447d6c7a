"""POST /v1/events: live events, each validated on its own, onto the event bus; a
purchase naming its decision is also that decision's conversion.

Events of users who opted out are dropped before the bus: neither streamed into
features nor stored, and counted (`tailor_events_dropped_total{reason="opted_out"}`,
`dropped` in the answer). Until this process has read the opt-out list, nobody's
consent is known: the batch is refused whole with a 503, so nothing of an opted-out
user is kept and nothing of the others is lost (the sender retries).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from serving.api.batches import answer, near_now, too_many, validated
from serving.api.clock_bounds import event_bounds
from serving.api.deps import BusDep, EngineDep, ServicesDep, SettingsDep
from serving.api.responses import BATCH_REFUSED, UNAVAILABLE, UNPARSABLE
from serving.api.schemas import BatchAccepted
from serving.decision.ports import ConsentUnknown
from serving.metrics import EVENTS_DROPPED
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
    check = near_now(engine.clock.now(), event_bounds(settings))
    valid, errors = validated(items, Event, check)
    try:
        accepted = [event for event in valid if not services.opt_outs.contains(event.user_id)]
    except ConsentUnknown:
        return JSONResponse(
            status_code=503,
            content={
                "detail": "who opted out is not known yet (the decision database has not "
                "answered since start-up); none of the events was accepted, retry the "
                "whole batch"
            },
        )
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
    dropped = len(valid) - len(accepted)
    if dropped:  # counted once the batch went through: a refused one is sent again
        EVENTS_DROPPED.labels("opted_out").inc(dropped)
    return answer(len(items), len(accepted), errors, dropped)
