"""`tailor experiments ope|shadow`: judge an arm from the log before it serves anyone."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tailor.cli.app import console, fail, load_settings
from tailor.cli.experiment_commands import experiment_database, experiments

if TYPE_CHECKING:
    from datetime import datetime

    from serving.experiment_reports import OffPolicyReport, ShadowReport
    from tailor.core.settings import TailorSettings


class MetricChoice(StrEnum):
    click = "click"
    conversion = "conversion"
    revenue = "revenue"


MetricOption = Annotated[MetricChoice, typer.Option(help="The reward per decision.")]
OpenWindowsOption = Annotated[
    bool,
    typer.Option(
        help="Count decisions whose attribution window is still open (their outcomes "
        "may not all be in: the estimate is then low)."
    ),
]


def _interval(low: float | None, high: float | None, digits: str = ".4f") -> str:
    return "-" if low is None or high is None else f"[{low:{digits}}, {high:{digits}}]"


def print_off_policy(report: OffPolicyReport) -> None:
    table = Table(
        "estimator",
        f"{report.metric} per decision",
        "95% interval",
        "note",
        title=f"{report.policy} on {report.experiment}"
        + (" (shadow)" if report.shadow else " (served, on-policy)"),
    )
    for estimate in report.estimates:
        interval = estimate.interval
        table.add_row(
            estimate.estimator.upper(),
            "-" if estimate.value is None else f"{estimate.value:.4f}",
            _interval(interval.low if interval else None, interval.high if interval else None),
            estimate.note or "",
        )
    console.print(table)
    console.print(
        f"{report.decisions:,} decisions of {report.users:,} users; support "
        f"{report.support:.1%}; effective sample size {report.effective_sample_size:,.0f}; "
        f"served {report.metric} per decision {report.logged_value:.4f}"
    )


def print_shadow(report: ShadowReport) -> None:
    if not report.arms:
        console.print(f"{report.experiment} has no shadow arm")
    for arm in report.arms:
        lift = arm.lift
        console.print(
            f"[bold]{arm.arm}[/bold]: {arm.evaluated:,} decisions, agreement "
            + ("-" if arm.agreement is None else f"{arm.agreement:.1%}")
            + f", latency p50 {arm.latency_ms_p50 or 0:.2f} ms p99 {arm.latency_ms_p99 or 0:.2f} ms"
            + (f", failed {arm.failed}" if arm.failed else "")
        )
        if lift is not None:
            relative = lift.relative_interval
            console.print(
                f"  DR {lift.metric} lift over served: {lift.absolute:+.4f} "
                f"{_interval(lift.absolute_interval.low, lift.absolute_interval.high, '+.4f')}"
                + (
                    f", relative {lift.relative:+.1%} "
                    f"{_interval(relative.low, relative.high, '+.1%')}"
                    if lift.relative is not None and relative is not None
                    else ""
                )
                + f" (support {lift.support:.1%}, {lift.decisions:,} decisions)"
            )
        if arm.disagreements:
            table = Table("champion's variant", "shadow's variant", "decisions")
            for row in arm.disagreements:
                table.add_row(row.champion_variant, row.shadow_variant, f"{row.decisions:,}")
            console.print(table)
        if arm.note:
            console.print(f"  note: {arm.note}", markup=False)


def _cutoff(settings: TailorSettings, metric: MetricChoice, open_windows: bool) -> datetime | None:
    """Decisions before this have had their whole attribution window."""
    from serving.experiment_reports import attribution_cutoff

    if open_windows:
        return None
    return attribution_cutoff(settings.clock.now(), metric.value, settings.outcomes)


@experiments.command("ope")
def off_policy(
    key: Annotated[str, typer.Argument(help="The experiment's key.")],
    policy: Annotated[str, typer.Option(help="The arm to judge (a shadow arm, usually).")],
    metric: MetricOption = MetricChoice.conversion,
    open_windows: OpenWindowsOption = False,
) -> None:
    """IPS, self-normalized IPS and doubly robust estimates of an arm's value."""
    from serving.experiment_reports import NoDecisions, UnknownPolicy, off_policy_report

    settings = load_settings()
    cutoff = _cutoff(settings, metric, open_windows)
    with experiment_database(settings, key) as (plan, placement, database):
        try:
            report = off_policy_report(
                database, plan, placement, policy, metric.value, settings.experiments, cutoff
            )
        except (UnknownPolicy, NoDecisions) as error:
            raise fail(str(error)) from error
    print_off_policy(report)


@experiments.command("shadow")
def shadow(
    key: Annotated[str, typer.Argument(help="The experiment's key.")],
    metric: MetricOption = MetricChoice.conversion,
    open_windows: OpenWindowsOption = False,
) -> None:
    """Each shadow arm: agreement, disagreements, latency and its estimated lift."""
    from serving.experiment_reports import shadow_report

    settings = load_settings()
    cutoff = _cutoff(settings, metric, open_windows)
    with experiment_database(settings, key) as (plan, placement, database):
        report = shadow_report(
            database, plan, placement, metric.value, settings.experiments, cutoff
        )
    print_shadow(report)
