"""Batches of items validated one by one: the valid ones go on, the others are named by
their index and field. `/v1/events` and `/v1/outcomes` answer alike."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from serving.api.clock_bounds import ClockBounds
from serving.api.schemas import BatchAccepted, ItemError

M = TypeVar("M", bound=BaseModel)


def too_many(count: int, limit: int, what: str) -> JSONResponse | None:
    if count <= limit:
        return None
    return JSONResponse(
        status_code=413,
        content={"detail": f"{count} {what} in one request; send at most {limit} per batch"},
    )


def validated(
    items: list[Any], model: type[M], check: Callable[[M], ItemError | None] | None = None
) -> tuple[list[M], list[ItemError]]:
    """Each item as `model`, then through `check` (given its index later); the errors
    name the item and the field."""
    accepted: list[M] = []
    errors: list[ItemError] = []
    for index, item in enumerate(items):
        try:
            parsed = model.model_validate(item)
        except ValidationError as error:
            errors.extend(
                ItemError(
                    index=index,
                    field=".".join(str(part) for part in issue["loc"]) or "<item>",
                    message=issue["msg"],
                )
                for issue in error.errors()
            )
            continue
        problem = check(parsed) if check is not None else None
        if problem is not None:
            errors.append(problem.model_copy(update={"index": index}))
            continue
        accepted.append(parsed)
    return accepted, errors


def near_now(now: datetime, bounds: ClockBounds) -> Callable[[Any], ItemError | None]:
    """A check refusing a `ts` outside `bounds` around `now`."""

    def check(item: Any) -> ItemError | None:
        problem = bounds.problem(item.ts, now)
        return None if problem is None else ItemError(index=0, field="ts", message=problem)

    return check


def answer(items: int, accepted: int, errors: list[ItemError], dropped: int = 0) -> Any:
    """200 with the counts and the errors; 422 (same body) when nothing was valid. Valid
    items that were `dropped` (events of users who opted out) are no error."""
    result = BatchAccepted(
        accepted=accepted, rejected=items - accepted - dropped, errors=errors, dropped=dropped
    )
    if not accepted and not dropped:
        return JSONResponse(status_code=422, content=result.model_dump())
    return result
