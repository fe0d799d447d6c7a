"""What routes answer besides their success, declared once for the OpenAPI document:
clients read it, and the fuzz test (`tests/serving/api/test_fuzzing.py`) fails on any
status or body it does not declare."""

from __future__ import annotations

from typing import Any

from serving.api.schemas import BatchAccepted, ErrorBody, ValidationErrorBody

Responses = dict[int | str, dict[str, Any]]


def refusal(description: str, model: Any = ErrorBody) -> dict[str, Any]:
    return {"model": model, "description": description}


# `body_limit.BodyLimit` answers it before any route, whatever the method.
TOO_LARGE: Responses = {
    413: refusal("The body is over serving.max_body_bytes, or a batch has too many items.")
}
# FastAPI's own answer to a body it cannot decode (not UTF-8, say).
UNPARSABLE: Responses = {400: refusal("The body could not be parsed.")}
ADMIN: Responses = {
    401: refusal("The X-API-Key header is missing or wrong."),
    403: refusal("The admin API is closed: no key is configured."),
}
NOT_FOUND: Responses = {404: refusal("No such resource.")}
UNAVAILABLE: Responses = {503: refusal("A database or the event stream is unreachable; retry.")}
BATCH_REFUSED: Responses = {
    422: refusal(
        "Nothing in the batch was valid (the counts and each error), or the body is not "
        "a batch at all (FastAPI's validation shape).",
        BatchAccepted | ValidationErrorBody,
    )
}
