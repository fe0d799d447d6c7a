"""GET /v1/models/{version}/report: the training report `tailor train` wrote.

A read route like GET /v1/decisions/{id}: no key. The version is matched against the
pattern of the names training gives (or `latest`) before it touches a path, so no
request can reach a file outside `models_dir`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response

from serving.api.deps import SettingsDep
from serving.api.responses import NOT_FOUND
from tailor.core.model_artifact import REPORT_FILE, VERSION_PATTERN

router = APIRouter(tags=["models"])


# `Response` as the route's class, so FastAPI documents the 200 as HTML only and the
# 404 as the JSON error it is (an HTML route class would label both HTML).
REPORT_PAGE = {
    200: {
        "description": "The report, one self-contained HTML page.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/v1/models/{version}/report",
    response_class=Response,
    responses=REPORT_PAGE | NOT_FOUND,
)
def model_report(
    version: Annotated[
        str,
        PathParam(
            pattern=VERSION_PATTERN,
            description="A model version as `tailor train` printed it, or `latest`.",
            examples=["latest"],
        ),
    ],
    settings: SettingsDep,
) -> Response:
    """The model's training report: metrics, curves, calibration, feature importance,
    tuning and the comparison with the model it replaced."""
    try:
        page = (settings.models_dir / version / REPORT_FILE).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return JSONResponse(
            status_code=404,
            content={
                "detail": f"no report for model version {version!r}; `tailor train` "
                "writes one with each model"
            },
        )
    return HTMLResponse(page)
