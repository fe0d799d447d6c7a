"""POST /v1/outcomes: what users did after decisions (impressions, clicks, conversions)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from serving.api.batches import answer, near_now, too_many, validated
from serving.api.clock_bounds import event_bounds
from serving.api.deps import EngineDep, ServicesDep, SettingsDep
from serving.api.responses import BATCH_REFUSED, UNPARSABLE
from serving.api.schemas import BatchAccepted
from tailor.core.outcome import Outcome

router = APIRouter(tags=["outcomes"])


@router.post(
    "/v1/outcomes",
    response_model=BatchAccepted,
    responses=UNPARSABLE | BATCH_REFUSED,
)
def record_outcomes(
    settings: SettingsDep,
    engine: EngineDep,
    services: ServicesDep,
    body: dict[str, Any] | list[Any] = Body(
        description="One outcome, or a list of them.",
        examples=[
            {
                "outcome_id": "click-7f3a",
                "decision_id": "331d6b457524453aba9780f4d1a0ddc5",
                "type": "click",
                "ts": "2026-03-04T09:30:00+00:00",
            }
        ],
    ),
) -> Any:
    """Validate each outcome; the valid ones are attributed to their decisions off the
    request path (outside the type's window, or for an unknown decision, they are
    counted by reason and not stored). Posting the same `outcome_id` again is harmless."""
    items = body if isinstance(body, list) else [body]
    refused = too_many(len(items), settings.outcomes.max_batch, "outcomes")
    if refused is not None:
        return refused
    check = near_now(engine.clock.now(), event_bounds(settings))
    accepted, errors = validated(items, Outcome, check)
    for outcome in accepted:
        services.outcome_log.record(outcome)
    return answer(len(items), len(accepted), errors)
