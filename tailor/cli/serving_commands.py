"""Serving commands: run the API, and check a placements file before deploying it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tailor.cli.app import app, console, load_settings
from tailor.core.settings import TailorSettings

if TYPE_CHECKING:
    from serving.decision.placements import LoadedPlacements


def serve_api(settings: TailorSettings, host: str | None = None, port: int | None = None) -> None:
    """The composition root of the API: serving's app with the pipelines' event bus."""
    import uvicorn

    from pipelines.streaming.wiring import event_bus
    from serving.api.app import create_app

    uvicorn.run(
        create_app(settings, event_bus),
        host=host or settings.serving.host,
        port=port or settings.serving.port,
        log_level="info",
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535)] = None,
) -> None:
    """Start the HTTP API (docs at /docs)."""
    serve_api(load_settings(), host, port)


def served_placements(settings: TailorSettings, path: Path | None = None) -> LoadedPlacements:
    """A placements file (default the configured one) loaded as the API would: rules
    type-checked against the current model's feature service, or the default service
    without a model. Raises PlacementsConfigError."""
    from serving.decision.engine import DecisionEngine
    from serving.decision.placements import load_placements, placements_path
    from tailor.core.model_artifact import ModelNotFoundError, load_artifact

    try:
        model = load_artifact(settings.models_dir)
    except ModelNotFoundError:
        model = None
    return load_placements(
        path or placements_path(settings.serving.placements_file),
        DecisionEngine.symbols_for(model),
    )


@app.command()
def check(
    placements: Annotated[
        Path | None,
        typer.Argument(help="Placements file; default serving.placements_file."),
    ] = None,
) -> None:
    """Validate a placements file as the API would load it (for CI and pre-deploy checks):
    schema, rule references, conditions compiled and type-checked against the features
    of the current model's feature service."""
    from serving.decision.placements import PlacementsConfigError, placements_path

    settings = load_settings()
    path = placements or placements_path(settings.serving.placements_file)
    try:
        loaded = served_placements(settings, path)
    except PlacementsConfigError as error:
        console.print(f"[red]{len(error.problems)} problem(s)[/red] in {path}:")
        for problem in error.problems:
            console.print(f"  - {problem}", markup=False)
        raise typer.Exit(1) from error
    table = Table("placement", "variants", "rules", title=f"{path}: version {loaded.version}")
    for name, placement in loaded.config.placements.items():
        table.add_row(name, str(len(placement.variants)), str(len(placement.rules)))
    console.print(table)
