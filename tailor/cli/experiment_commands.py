"""`tailor experiments list|report` and `tailor simulate`: experiments read from the
decision database, and a simulated week of visits decided by the real engine."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tailor.cli.app import app, console, fail, load_settings
from tailor.cli.serving_commands import served_placements
from tailor.core.settings import TailorSettings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from pipelines.simulation import SimulationReport, Visit
    from serving.decision.placements import ExperimentPlan, LoadedPlacements, Placement
    from serving.decision.schemas import DecisionBody
    from serving.experiments.results import ExperimentResults
    from tailor.core.outcome import Outcome

experiments = typer.Typer(help="Experiments: what runs, and its results.", no_args_is_help=True)
app.add_typer(experiments, name="experiments")


def _loaded(settings: TailorSettings) -> LoadedPlacements:
    from serving.decision.placements import PlacementsConfigError

    try:
        return served_placements(settings)
    except PlacementsConfigError as error:
        raise fail(str(error)) from error


@experiments.command("list")
def list_experiments() -> None:
    """The experiments of the placements file, with their status."""
    settings = load_settings()
    now = settings.clock.now()
    table = Table("experiment", "placement", "status", "runs now", "arms", "coverage")
    for plan in _loaded(settings).experiments.values():
        experiment = plan.experiment
        table.add_row(
            experiment.key,
            experiment.placement,
            experiment.status,
            "yes" if experiment.runs_at(now) else "no",
            ", ".join(
                arm.key
                + (" (shadow)" if arm.shadow else "")
                + (" (stopped)" if arm.stopped else "")
                for arm in experiment.arms
            ),
            f"{experiment.coverage:.0%}",
        )
    console.print(table)


@contextmanager
def experiment_database(
    settings: TailorSettings, key: str
) -> Iterator[tuple[ExperimentPlan, Placement, Engine]]:
    """The experiment's plan, its placement and the decision database, closed after; a
    read that fails becomes the command's error."""
    from sqlalchemy.exc import SQLAlchemyError

    from tailor.core.database.engine import DatabaseUnavailable, open_database

    loaded = _loaded(settings)
    plan = loaded.experiments.get(key)
    if plan is None:
        raise fail(f"no experiment {key!r} in the placements file")
    try:
        database = open_database(settings.decision_database_url, settings.decisions.auto_migrate)
    except DatabaseUnavailable as error:
        raise fail(str(error)) from error
    try:
        yield plan, loaded.config.placements[plan.experiment.placement], database
    except SQLAlchemyError as error:
        raise fail(f"cannot read the decision database: {error}") from error
    finally:
        database.dispose()


def experiment_report(settings: TailorSettings, key: str) -> ExperimentResults:
    from serving.experiments.results import experiment_results
    from serving.persistence.experiment_data import arm_users

    with experiment_database(settings, key) as (plan, _, database):
        data = arm_users(database, key)
    return experiment_results(plan.experiment, data, settings.experiments)


def _number(value: float | None, digits: str = ".4f") -> str:
    return "-" if value is None else format(value, digits)


def results_tables(results: ExperimentResults) -> list[Table]:
    arms = Table(
        "arm",
        "users",
        "decisions",
        "impressions",
        "CTR",
        "conversion",
        "revenue / decision",
        title=f"{results.key} on {results.placement} ({results.status})",
    )
    for arm in results.arms:
        arms.add_row(
            arm.arm,
            f"{arm.users:,}",
            f"{arm.decisions:,}",
            f"{arm.impressions:,}",
            _number(arm.ctr),
            _number(arm.conversion_rate),
            _number(arm.revenue_per_decision, ".2f"),
        )
    confidence = f"{1 - results.alpha:.0%}"
    lifts = Table(
        "arm vs control",
        "metric",
        "relative lift",
        f"{confidence} interval",
        "p (Holm)",
        "CUPED lift",
        "variance cut",
        "always-valid interval (abs)",
        title="Lift against the control",
    )
    for comparison in results.comparisons:
        for metric in comparison.metrics:
            lift, cuped = metric.lift, metric.cuped
            lifts.add_row(
                f"{comparison.arm} vs {comparison.control}",
                metric.metric,
                f"{lift.relative:+.1%}",
                f"[{lift.relative_ci.low:+.1%}, {lift.relative_ci.high:+.1%}]",
                f"{lift.p_value:.2g} ({lift.p_value_holm:.2g})",
                "-" if cuped is None else f"{cuped.relative:+.1%}",
                "-" if metric.variance_reduction is None else f"{metric.variance_reduction:.1%}",
                f"[{metric.sequential_ci.low:+.4f}, {metric.sequential_ci.high:+.4f}]",
            )
    return [arms, lifts]


def print_results(results: ExperimentResults) -> None:
    for table in results_tables(results):
        console.print(table)
    srm = results.sample_ratio
    console.print(
        f"sample ratio: users {srm.observed} against expected "
        f"{[round(e) for e in srm.expected]}, p={srm.p_value:.3g}"
        + (" [red]MISMATCH[/red]" if srm.mismatch else " (no mismatch)")
    )
    for note in results.notes:
        console.print(f"note: {note}", markup=False)


@experiments.command("report")
def report(key: Annotated[str, typer.Argument(help="The experiment's key.")]) -> None:
    """Per-arm results and each treatment against the control."""
    print_results(experiment_report(load_settings(), key))


def run_simulation(
    settings: TailorSettings,
    placement: str,
    start: datetime,
    days: int,
    visits_per_day: int,
    seed: int,
    *,
    on_decision: Callable[[Visit, DecisionBody], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> SimulationReport:
    """The composition the API makes, in-process: the real engine (its clock set to each
    visit) decides, and the outcomes go to the same outcome log the API feeds;
    `on_decision` and `on_outcome` see each decision and outcome as they happen (the
    demo's closed loop and the policy benchmark keep them per visit)."""
    from pipelines.generator.response import ShownVariant
    from pipelines.simulation import simulate
    from serving.decision.schemas import PersonalizeRequest, RequestContextBody
    from serving.wiring import build_services
    from tailor.core.clock import ManualClock

    clock = ManualClock(start)
    services = build_services(settings, clock=clock, rng=random.Random(seed), inline_shadows=True)
    engine = services.engine
    snapshot = engine.config.current
    config = snapshot.placements.config.placements.get(placement)
    if config is None:
        services.close()
        raise fail(
            f"no placement {placement!r}; known: {sorted(snapshot.placements.config.placements)}"
        )

    def decide(visit: Visit) -> ShownVariant:
        clock.set(visit.moment)
        request = PersonalizeRequest(
            user_id=visit.user_id,
            placement=placement,
            context=RequestContextBody(device=visit.device, country=visit.country, page="home"),
        )
        decision = engine.decide(request, snapshot)
        if on_decision is not None:
            on_decision(visit, decision)
        variant = config.variant(decision.variant.id)
        return ShownVariant(
            decision.decision_id, variant.id, variant.category, variant.tags, variant.goal
        )

    def record(outcome: Outcome) -> None:
        services.outcome_log.record(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        with console.status("simulating") as status:
            return simulate(
                settings.generator,
                start=start,
                days=days,
                visits_per_day=visits_per_day,
                seed=seed,
                decide=decide,
                record=record,
                on_day=lambda done: status.update(f"simulated {done}/{days} days"),
            )
    finally:
        services.close()  # decisions first, then the outcomes that name them


def data_end(settings: TailorSettings) -> date:
    """The generated history's end: simulated visits land in its last days, where the
    online features are fresh."""
    return settings.generator.end_date or settings.clock.now().date()


@app.command("simulate")
def simulate_command(
    days: Annotated[int, typer.Option(min=1, max=365, help="Days of visits.")] = 7,
    visits_per_day: Annotated[int, typer.Option(min=1, max=1_000_000)] = 1500,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same visits and draws.")] = 7,
    placement: Annotated[str, typer.Option(help="The placement each visit asks for.")] = (
        "homepage_banner"
    ),
) -> None:
    """Simulated users visit, the engine decides, and the generator's ground truth draws
    impressions, clicks and conversions, posted as outcomes."""
    settings = load_settings()
    end = data_end(settings)
    start = datetime(end.year, end.month, end.day, tzinfo=UTC) - timedelta(days=days)
    print_simulation(run_simulation(settings, placement, start, days, visits_per_day, seed))


def print_simulation(report: SimulationReport) -> None:
    console.print(
        f"simulated {report.visits:,} visits {report.start:%Y-%m-%d} to "
        f"{report.end:%Y-%m-%d}: {report.impressions:,} impressions, {report.clicks:,} "
        f"clicks, {report.conversions:,} conversions, revenue {report.revenue:,.2f}, "
        f"in {report.seconds:.1f} s"
    )
