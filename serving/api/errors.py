"""Exceptions that become HTTP answers, in one place so every route answers alike."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from serving.api.deps import UnknownPlacement
from serving.persistence.opt_outs import OptOutsUnavailable
from serving.persistence.outbox import OutboxUnavailable


def _database_down(_request: Request, error: Exception) -> JSONResponse:
    return JSONResponse(
        status_code=503,
        content={"detail": f"the decision database is unreachable ({error}); retry later"},
    )


def _unknown_placement(_request: Request, error: Exception) -> JSONResponse:
    """The shape of FastAPI's own validation errors: the field and what is known."""
    assert isinstance(error, UnknownPlacement)
    return JSONResponse(
        status_code=422,
        content={
            "detail": [
                {
                    "type": "value_error",
                    "loc": ["body", "placement"],
                    "msg": str(error),
                    "input": error.placement,
                }
            ]
        },
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OptOutsUnavailable, _database_down)
    app.add_exception_handler(OutboxUnavailable, _database_down)
    app.add_exception_handler(UnknownPlacement, _unknown_placement)
