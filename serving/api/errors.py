"""Exceptions that become HTTP answers, in one place so every route answers alike."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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


EXCERPT_CHARS = 80
MESSAGE_CHARS = 300


def _encodable(text: str, limit: int) -> str:
    """Short, and valid UTF-8 whatever the client sent (a lone surrogate is escaped)."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if len(safe) <= limit else f"{safe[:limit]}... ({len(safe):,} characters)"


def _excerpt(value: Any) -> Any:
    """What a 422 may repeat of the input: never a value JSON cannot carry (NaN,
    Infinity, a lone surrogate), never more than a short excerpt of a large one."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else _encodable(str(value), EXCERPT_CHARS)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _encodable(value, EXCERPT_CHARS)
    return _encodable(repr(value), EXCERPT_CHARS)


def _invalid_request(_request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 shape (`detail[].loc` names the field), made safe to encode: its
    own handler echoes the input and answered 500 on NaN or a lone surrogate."""
    assert isinstance(error, RequestValidationError)
    detail = [
        {
            "type": issue.get("type"),
            "loc": [
                part if isinstance(part, int) else _encodable(str(part), EXCERPT_CHARS)
                for part in issue.get("loc", ())
            ],
            "msg": _encodable(str(issue.get("msg", "")), MESSAGE_CHARS),
            "input": _excerpt(issue.get("input")),
        }
        for issue in error.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(OptOutsUnavailable, _database_down)
    app.add_exception_handler(OutboxUnavailable, _database_down)
    app.add_exception_handler(UnknownPlacement, _unknown_placement)
