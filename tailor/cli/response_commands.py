"""`tailor train-response`: the response model from the decision log and its outcomes."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from tailor.cli.app import app, console, fail, load_settings
from tailor.core.settings import TailorSettings

if TYPE_CHECKING:
    from pipelines.training.response.train import ResponseTrainingResult


def _auc(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def response_step(
    settings: TailorSettings, end: datetime | None = None
) -> ResponseTrainingResult | None:
    """Train and publish a response model; None (and why, printed) when the log holds
    too few conversions, so the propensity fallback keeps scoring."""
    from pipelines.training.response.train import NotEnoughOutcomes, train_response_model

    try:
        with console.status("training the response model"):
            result = train_response_model(settings, end=end)
    except NotEnoughOutcomes as error:
        console.print(f"no response model: {error}; the propensity fallback keeps scoring")
        return None
    metrics = "; ".join(
        f"{target} auc {_auc(values['auc'])} (ipw {_auc(values['ipw_auc'])})"
        for target, values in result.metrics.items()
    )
    console.print(
        f"trained response model {result.version} on {result.decisions:,} logged decisions "
        f"({result.clicks:,} clicks, {result.conversions:,} conversions) in "
        f"{result.seconds:.1f} s\nheld-out {metrics}\nartifact: {result.path} (serves after "
        "an API restart)"
    )
    return result


@app.command("train-response")
def train_response(
    end: Annotated[
        datetime | None,
        typer.Option(
            help="Learn from decisions before this instant (UTC); default now "
            "less the conversion window."
        ),
    ] = None,
) -> None:
    """Train the per-candidate response model (click and conversion) from the logged
    decisions and their outcomes, weighted by 1 / the logging probability."""
    from sqlalchemy.exc import SQLAlchemyError

    from tailor.core.database.engine import DatabaseUnavailable

    settings = load_settings()
    if end is not None and end.tzinfo is None:
        end = end.replace(tzinfo=settings.clock.now().tzinfo)
    try:
        response_step(settings, end)
    except (DatabaseUnavailable, SQLAlchemyError) as error:
        raise fail(f"cannot read the decision database: {error}") from error
