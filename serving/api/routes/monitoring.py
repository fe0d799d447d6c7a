"""GET /v1/monitoring: the latest runs of `tailor monitor`, as stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from serving.api.deps import ServicesDep
from serving.api.responses import UNAVAILABLE
from tailor.core.monitoring_run import MonitoringRun, recent_runs

router = APIRouter(tags=["monitoring"])


class MonitoringRuns(BaseModel):
    runs: list[MonitoringRun]  # newest first; empty before the first run


@router.get("/v1/monitoring", response_model=MonitoringRuns, responses=UNAVAILABLE)
def monitoring(
    services: ServicesDep,
    runs: int = Query(1, ge=1, le=100, description="How many of the latest runs."),
) -> Any:
    """Drift (PSI per input and of the score against the served model's reference
    profile), live AUC and calibration, and conversion-rate changes, with the status
    (ok, warn, alert) and its reasons; per-bucket shares are in `details`."""
    try:
        with services.database.connect() as connection:
            return MonitoringRuns(runs=recent_runs(connection, runs))
    except SQLAlchemyError:
        return JSONResponse(
            status_code=503, content={"detail": "the decision database is unreachable; retry"}
        )
