"""Pipeline commands: generate or import events, transform, apply, materialize, train,
and run a stream worker. Heavy imports wait inside each command, so `tailor --help`
stays fast."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from tailor.cli.app import Actor, app, console, default_actor, fail, load_settings
from tailor.cli.scheduling import run_forever
from tailor.core.settings import GeneratorSettings, TailorSettings


def generate_step(settings: TailorSettings, config: GeneratorSettings) -> None:
    from pipelines.generate import generate_events

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("simulating users", total=config.users)
        report = generate_events(
            config,
            settings.events_dir,
            settings.ground_truth_dir,
            today=settings.clock.now().date(),
            on_progress=lambda done: progress.advance(task, done),
        )
    console.print(
        f"generated {report.events:,} events in {report.sessions:,} sessions of "
        f"{report.users:,} users ({report.purchases:,} purchases), "
        f"{report.start:%Y-%m-%d} to {report.end:%Y-%m-%d}, "
        f"{len(report.files)} file(s) in {settings.events_dir} in {report.seconds:.1f} s"
    )


@app.command()
def generate(
    users: Annotated[int | None, typer.Option(help="Number of users (ids 1..N).")] = None,
    days: Annotated[int | None, typer.Option(help="Days of history.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    end_date: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Day after the last simulated day (default today)."
        ),
    ] = None,
) -> None:
    """Simulate a clickstream with known purchase propensities."""
    settings = load_settings()
    overrides: dict[str, Any] = {
        "users": users,
        "days": days,
        "seed": seed,
        "end_date": end_date.date() if end_date else None,
    }
    try:
        config = GeneratorSettings.model_validate(
            settings.generator.model_dump()
            | {key: value for key, value in overrides.items() if value is not None}
        )
    except ValidationError as error:
        raise fail(f"invalid generator option:\n{error}") from error
    generate_step(settings, config)


@app.command("import")
def import_(
    source: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import a store's clickstream export (REES46 / Open CDP CSV format)."""
    from pipelines.importer import ImportFormatError, import_rees46

    settings = load_settings()
    try:
        report = import_rees46(source, settings.events_dir)
    except ImportFormatError as error:
        raise fail(str(error)) from error
    console.print(
        f"imported {report.rows_written:,} of {report.rows_read:,} rows from {source} "
        f"into {report.output} in {report.seconds:.1f} s"
    )
    if report.rejected:
        table = Table("rejected because", "rows")
        for reason, count in sorted(report.rejected.items()):
            table.add_row(reason, f"{count:,}")
        console.print(table)
    if report.unknown_event_types:
        console.print(f"unknown event types: {report.unknown_event_types}")
    if report.rejected_output:
        console.print(f"rejected rows with their reasons: {report.rejected_output}")


def transform_step(settings: TailorSettings) -> None:
    """dbt's marts, then the history's session features from dbt's deduplicated events."""
    from pipelines.streaming.backfill import backfill_session_log
    from pipelines.transform import run_transformations

    with console.status("running dbt build"):
        report = run_transformations(settings)
    rows = ", ".join(f"{name} {count:,} rows" for name, count in report.mart_rows.items())
    console.print(
        f"dbt build: {report.models_built} models, {report.tests_passed} tests passed; "
        f"{rows}; {report.seconds:.1f} s"
    )
    with console.status("replaying history through the session logic"):
        backfill = backfill_session_log(settings)
    console.print(
        f"session log: {backfill.events:,} events of {backfill.users:,} users replayed "
        f"into {backfill.path} in {backfill.seconds:.1f} s"
    )


@app.command()
def transform() -> None:
    """Build the feature marts from events with dbt (`dbt build`), then replay the events
    through the stream's session logic into the offline session log."""
    from pipelines.transform import TransformError

    try:
        transform_step(load_settings())
    except (TransformError, FileNotFoundError) as error:
        raise fail(str(error)) from error


def apply_step(settings: TailorSettings) -> None:
    from pipelines.apply import apply_definitions

    with console.status("registering feature definitions"):
        report = apply_definitions(settings)
    kinds = ", ".join(f"{count} {kind}" for kind, count in report.objects.items())
    console.print(f"applied {kinds} to the {settings.profile} store in {report.seconds:.1f} s")


@app.command()
def apply() -> None:
    """Register entities, sources, feature views and services with Feast."""
    apply_step(load_settings())


def _print_materialized(report) -> None:
    if report is None:
        console.print("skipped: another materialization holds the lock")
        return
    entities = ", ".join(f"{view} {n:,} keys" for view, n in report.entities_per_view.items())
    window = f"{report.start:%Y-%m-%d %H:%M}" if report.start else "last run"
    console.print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} materialized ({report.mode}) {window} -> "
        f"{report.end:%Y-%m-%d %H:%M} UTC: {entities}; {report.seconds:.1f} s"
    )


def materialize_step(
    settings: TailorSettings, start: datetime | None, end: datetime | None
) -> None:
    from pipelines.schedule import materialize_locked

    _print_materialized(materialize_locked(settings, start, end))


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def _print_status(settings: TailorSettings) -> None:
    from tailor.core.run_records import run_records

    table = Table("started (UTC)", "ok", "mode", "window end", "keys", "seconds", "error")
    for record in run_records(settings).recent()[:20]:
        keys = sum((record.entities_per_view or {}).values())
        table.add_row(
            record.started_at[:19],
            "yes" if record.ok else "NO",
            record.mode or "-",
            (record.window_end or "-")[:19],
            f"{keys:,}",
            f"{record.seconds:.1f}" if record.seconds is not None else "-",
            record.error or "",
        )
    console.print(table)


@app.command()
def materialize(
    start: Annotated[
        datetime | None,
        typer.Option(
            help="Window start (UTC); default: all history on a new store, else since the last run."
        ),
    ] = None,
    end: Annotated[datetime | None, typer.Option(help="Window end (UTC); default now.")] = None,
    every: Annotated[
        str | None, typer.Option(help="Run forever at this interval, e.g. 15m.")
    ] = None,
    cron: Annotated[
        str | None, typer.Option(help="Run forever on a cron schedule, e.g. '*/15 * * * *'.")
    ] = None,
    status: Annotated[bool, typer.Option("--status", help="Show recent runs and exit.")] = False,
) -> None:
    """Load the latest feature values into the online store, once or on a schedule."""

    from pipelines.schedule import materialize_locked

    settings = load_settings()
    if status:
        _print_status(settings)
        return
    if every is None and cron is None:
        materialize_step(settings, _utc(start), _utc(end))
        return
    if start or end:
        raise fail("--start/--end apply to a single run; a schedule runs incrementally")
    run_forever(
        every, cron, "materializing", lambda: _print_materialized(materialize_locked(settings))
    )


def train_step(settings: TailorSettings, *, actor: str, reason: str) -> None:
    """Train a challenger and let the gate decide whether it serves."""
    from pipelines.training.retrain import train_and_judge

    with console.status("training") as status:
        outcome = train_and_judge(
            settings,
            actor=actor,
            reason=reason,
            on_step=lambda message: status.update(message),
        )
    report = outcome.report
    metrics = ", ".join(f"{name} {value:.4f}" for name, value in report.metrics.items())
    oracle = f"{report.oracle_auc:.4f}" if report.oracle_auc is not None else "n/a"
    verdict = "[green]promoted[/]" if outcome.verdict.promote else "[yellow]not promoted[/]"
    console.print(
        f"trained model {report.version} ({report.best_iteration} trees) on "
        f"{report.rows['train']:,}/{report.rows['valid']:,}/{report.rows['test']:,} "
        f"train/valid/test rows in {report.seconds:.1f} s\n"
        f"kept {report.selected}\n"
        f"test {metrics} ({report.calibration} calibration; "
        f"ece before it {report.metrics_uncalibrated['ece']:.4f}); "
        f"baseline auc {report.baseline_auc:.4f}; oracle auc {oracle}\n"
        f"artifact: {report.path}\n"
        f"report: {report.report_path}\n"
        f"{verdict}: {outcome.verdict.reason}"
    )


@app.command()
def train(
    by: Actor = None,
    reason: Annotated[str, typer.Option(help="Why this model is trained, for the ledger.")] = (
        "trained by hand"
    ),
) -> None:
    """Train the propensity model on point-in-time features, without opted-out users;
    it becomes champion only if it beats the current one (see `tailor models`)."""
    from tailor.core.database.consent import OptOutsUnreadable

    settings = load_settings()
    try:
        train_step(settings, actor=default_actor(by), reason=reason)
    except (FileNotFoundError, ValueError, OptOutsUnreadable) as error:
        raise fail(str(error)) from error


@app.command()
def retrain(
    every: Annotated[
        str | None, typer.Option(help="Run forever at this interval, e.g. 1d.")
    ] = None,
    cron: Annotated[
        str | None, typer.Option(help="Run forever on a cron schedule, e.g. '30 3 * * *'.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Train even when retraining.trigger would skip.")
    ] = False,
    by: Actor = None,
    reason: Annotated[str, typer.Option(help="Why, for the ledger.")] = "retrain asked",
) -> None:
    """Train a challenger when retraining.trigger says so (always, or after a monitoring
    alert on the champion) and promote it only if it beats the champion."""
    from pipelines.training.retrain import retrain_trigger
    from tailor.core.database.consent import OptOutsUnreadable
    from tailor.core.database.engine import DatabaseUnavailable

    settings = load_settings()
    actor = default_actor(by)

    def run_once() -> None:
        trigger = "--force" if force else retrain_trigger(settings)
        if trigger is None:
            console.print(
                "skipped: retraining.trigger is on_alert and monitoring has not alerted on "
                "the champion since it was promoted"
            )
            return
        train_step(settings, actor=actor, reason=f"{reason} ({trigger})")

    if every is None and cron is None:
        try:
            run_once()
        except (
            FileNotFoundError,
            ValueError,
            OptOutsUnreadable,
            DatabaseUnavailable,
        ) as error:
            raise fail(str(error)) from error
        return
    run_forever(every, cron, "retraining", run_once)


@app.command()
def stream(
    consumer: Annotated[
        str | None, typer.Option(help="Consumer name, unique per worker (default host-pid).")
    ] = None,
) -> None:
    """Run a stream worker: live events -> session features in Feast (redis profile)."""
    import os
    import re
    import signal
    import socket
    import threading

    from feature_repo.store import open_store
    from pipelines.streaming.wiring import session_processor
    from pipelines.streaming.worker import StreamWorker
    from tailor.core.clients import redis_client

    settings = load_settings()
    if settings.profile != "redis":
        raise fail(
            "stream workers read the Redis Stream of the redis profile; under the embedded "
            "profile the API processes events in-process. Set TAILOR_PROFILE=redis."
        )
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name):
        raise fail(f"--consumer {name!r}: use letters, digits, '.', '_' or '-' (it names files)")
    worker = StreamWorker(
        redis_client(settings),
        settings.stream,
        session_processor(settings, open_store(settings), name),
        name,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    console.print(
        f"worker {name} consuming {settings.stream.stream_key} as group "
        f"{settings.stream.group}; Ctrl-C to stop"
    )
    started = time.perf_counter()
    worker.run(stop)
    console.print(
        f"worker {name} stopped after {worker.processed_events:,} events "
        f"in {time.perf_counter() - started:.0f} s"
    )
