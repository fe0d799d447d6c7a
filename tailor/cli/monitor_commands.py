"""`tailor monitor`: drift, live performance and conversion-rate changes of the served
model, once or on a schedule; each run is stored in the decision database.

A single run's exit code is its status, for schedulers and scripts: 0 ok, 3 warn,
4 alert (1 is an error, 2 invalid settings, as for every command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tailor.cli.app import app, console, fail, load_settings
from tailor.cli.scheduling import run_forever

if TYPE_CHECKING:
    from tailor.core.monitoring_run import MonitoringRun
    from tailor.core.settings import MonitoringSettings

EXIT_CODES = {"ok": 0, "warn": 3, "alert": 4}
STYLES = {"ok": "green", "warn": "yellow", "alert": "red"}
SHOWN_INPUTS = 10


def _number(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def print_run(run: MonitoringRun, config: MonitoringSettings) -> None:
    from pipelines.monitoring.monitor import psi_level

    style = STYLES[run.status]
    reasons = f" ({', '.join(run.reasons)})" if run.reasons else ""
    console.print(
        f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC, model {run.model_version}: "
        f"[{style}]{run.status.upper()}[/{style}]{reasons}",
        highlight=False,
    )
    console.print(
        f"drift: {run.decisions:,} scored decisions {run.window_start:%Y-%m-%d %H:%M} to "
        f"{run.window_end:%Y-%m-%d %H:%M}; score PSI {_number(run.score_psi)}; largest "
        f"input PSI {_number(run.max_feature_psi)} ({run.max_feature or '-'})"
    )
    changes = (
        f"{run.conversion_changes} (last at {run.last_change_at:%Y-%m-%d %H:%M})"
        if run.last_change_at
        else "none"
    )
    console.print(
        f"performance: {run.outcome_decisions:,} matured decisions, {run.conversions:,} "
        f"conversions; live AUC {_number(run.auc_live)}, ECE {_number(run.ece_live, '.4f')}, "
        f"observed/expected {_number(run.observed_expected, '.2f')}; conversion-rate "
        f"changes: {changes}"
    )
    if run.feature_psi:
        table = Table("input", "PSI", "level", title="Largest input shifts")
        ranked = sorted(run.feature_psi.items(), key=lambda item: -item[1])
        for name, value in ranked[:SHOWN_INPUTS]:
            level = psi_level(value, config)
            table.add_row(name, f"{value:.3f}", f"[{STYLES[level]}]{level}[/{STYLES[level]}]")
        console.print(table)
    for note in run.details.get("notes", []):
        console.print(f"note: {note}", markup=False, highlight=False)
    console.print(f"run {run.run_id} stored in {run.seconds:.1f} s")


@app.command()
def monitor(
    every: Annotated[
        str | None, typer.Option(help="Run forever at this interval, e.g. 1h.")
    ] = None,
    cron: Annotated[
        str | None, typer.Option(help="Run forever on a cron schedule, e.g. '0 * * * *'.")
    ] = None,
) -> None:
    """PSI of the served model's inputs and score against its reference profile, live
    AUC and calibration from outcomes, and ADWIN on the conversion rate. Once, the exit
    code is the status: 0 ok, 3 warn, 4 alert."""

    from pipelines.monitoring.monitor import run_monitor
    from tailor.core.database.engine import DatabaseUnavailable
    from tailor.core.database.migrations import SchemaOutOfDate
    from tailor.core.model_artifact import ModelNotFoundError

    settings = load_settings()
    if every is None and cron is None:
        try:
            run = run_monitor(settings)
        except (ModelNotFoundError, DatabaseUnavailable, SchemaOutOfDate) as error:
            raise fail(str(error)) from error
        print_run(run, settings.monitoring)
        raise typer.Exit(EXIT_CODES[run.status])

    run_forever(
        every, cron, "monitoring", lambda: print_run(run_monitor(settings), settings.monitoring)
    )
