"""GET /v1/decisions/{decision_id}: a decision as logged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from serving.api.deps import ServicesDep
from serving.api.responses import NOT_FOUND, UNAVAILABLE
from serving.persistence.decision_log import DecisionLogUnavailable
from tailor.core.decision_record import DecisionRecord

router = APIRouter(tags=["decisions"])


@router.get(
    "/v1/decisions/{decision_id}",
    response_model=DecisionRecord,
    responses=NOT_FOUND | UNAVAILABLE,
)
def logged_decision(
    decision_id: Annotated[
        str, PathParam(pattern=r"^[0-9a-f]{32}$", description="As the decision returned it.")
    ],
    services: ServicesDep,
) -> Any:
    """A decision as logged: its request, its full response and the versions used."""
    try:
        record = services.decision_log.get(decision_id)
    except DecisionLogUnavailable:
        return JSONResponse(
            status_code=503,
            content={"detail": "the decision log database is unreachable; retry later"},
        )
    if record is None:
        return JSONResponse(status_code=404, content={"detail": "no such decision"})
    return record
