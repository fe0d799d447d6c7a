"""DELETE /v1/users/{user_id}: erase a user's data everywhere Tailor keeps it (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from serving.api.deps import EraserDep, require_admin_key
from serving.api.responses import ADMIN, refusal
from serving.api.routes.admin import UserId
from serving.api.schemas import ErasureBody

router = APIRouter(tags=["users"], dependencies=[Depends(require_admin_key)], responses=ADMIN)


@router.delete(
    "/v1/users/{user_id}",
    response_model=ErasureBody,
    responses={
        503: refusal(
            "A store failed (named in `unavailable`, nothing claimed erased there); the "
            "others were erased. Retry: erasure is idempotent.",
            ErasureBody,
        )
    },
)
def erase_user(
    user_id: UserId,
    eraser: EraserDep,
    keep_consent: bool = Query(
        False,
        description="Erase the data but leave the user's consent as it is. By default "
        "the user is also opted out, or their next events and visits would build the "
        "data up again.",
    ),
) -> Any:
    """Erase the user's online features, live session (state and events not yet
    processed), decisions, outcomes, shadow decisions, experiment assignments and
    triggers; counts per store. Offline files (raw events, marts, the session log) are
    not rewritten: training leaves out users who opted out."""
    erasure = eraser.erase(user_id, keep_consent=keep_consent)
    body = ErasureBody(
        user_id=user_id,
        opted_out=erasure.opted_out,
        erased=erasure.erased,
        unavailable=erasure.unavailable,
    )
    if erasure.unavailable:
        return JSONResponse(status_code=503, content=body.model_dump())
    return body
