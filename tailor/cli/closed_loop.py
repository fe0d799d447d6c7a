"""The demo's closed loop: a simulated week under the champion (with exploration) logs
decisions and outcomes, the response model learns from them, and the same week runs
again with it. Both weeks draw from the same seed, so each visit meets the same luck
under both policies and the comparison is paired visit by visit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from rich.table import Table
from scipy import stats

from tailor.cli.experiment_commands import print_simulation, run_simulation
from tailor.cli.response_commands import response_step
from tailor.core.settings import TailorSettings

if TYPE_CHECKING:
    from pipelines.simulation import Visit
    from serving.decision.schemas import DecisionBody
    from tailor.core.outcome import Outcome


@dataclass
class VisitTrace:
    """Per visit, in order: the arm that decided it and whether it converted. Two runs
    with the same seed and dates visit alike, so their traces pair visit by visit."""

    arms: list[str | None] = field(default_factory=list)
    decision_ids: list[str] = field(default_factory=list)
    converted_ids: set[str] = field(default_factory=set)

    def decided(self, visit: Visit, decision: DecisionBody) -> None:
        self.arms.append(decision.experiment.arm if decision.experiment else None)
        self.decision_ids.append(decision.decision_id)

    def recorded(self, outcome: Outcome) -> None:
        if outcome.type == "conversion":
            self.converted_ids.add(outcome.decision_id)

    def converted(self) -> list[bool]:
        return [decision_id in self.converted_ids for decision_id in self.decision_ids]


@dataclass(frozen=True)
class ConversionChange:
    """One group's conversion rate per visit in the two weeks, paired visit by visit."""

    group: str
    visits: int
    before: float
    after: float
    low: float  # the change's interval (after - before)
    high: float


def paired_change(
    group: str, before: list[bool], after: list[bool], alpha: float
) -> ConversionChange:
    """The same visits with the same luck (common random numbers) under both policies:
    the paired t interval of the per-visit difference is far narrower than comparing
    two independent rates."""
    result = stats.ttest_rel(np.asarray(after, dtype=float), np.asarray(before, dtype=float))
    interval = result.confidence_interval(confidence_level=1 - alpha)
    return ConversionChange(
        group,
        len(before),
        float(np.mean(before)),
        float(np.mean(after)),
        float(interval.low),
        float(interval.high),
    )


def closed_loop_settings(settings: TailorSettings) -> TailorSettings:
    """The second week decides into a database of its own, so the first week's
    experiment, shadow and monitoring figures stay those of the first week."""
    path = settings.data_dir / "demo_closed_loop.db"
    path.unlink(missing_ok=True)
    decisions = settings.decisions.model_copy(update={"database_url": f"sqlite:///{path}"})
    return settings.model_copy(update={"decisions": decisions})


def closed_loop(
    settings: TailorSettings,
    placement: str,
    start: datetime,
    days: int,
    visits_per_day: int,
    seed: int,
    week: VisitTrace,
) -> list[ConversionChange]:
    """Learn the response model from the simulated `week`, then live the same days
    again (same seed) with it: what the loop from outcomes back to decisions is worth."""
    if response_step(settings, end=start + timedelta(days=days)) is None:
        return []
    again = VisitTrace()
    print_simulation(
        run_simulation(
            closed_loop_settings(settings),
            placement,
            start,
            days,
            visits_per_day,
            seed,
            on_decision=again.decided,
            on_outcome=again.recorded,
        )
    )
    before, after = week.converted(), again.converted()
    if len(before) != len(after):  # cannot happen with the same seed and dates
        raise RuntimeError("the two simulated weeks visited differently")
    alpha = settings.experiments.alpha
    changes = [paired_change("all visits", before, after, alpha)]
    arms = sorted({arm for arm in week.arms if arm is not None})
    for arm in arms:
        chosen = [i for i, a in enumerate(week.arms) if a == arm]
        changes.append(
            paired_change(
                f"arm {arm}", [before[i] for i in chosen], [after[i] for i in chosen], alpha
            )
        )
    return changes


def changes_table(changes: list[ConversionChange], alpha: float) -> Table:
    table = Table(
        "visits",
        "n",
        "conversion week 1",
        "conversion week 2",
        "change",
        f"{1 - alpha:.0%} interval (paired)",
        title="Conversion before and after the response model (same visits, same luck)",
    )
    for change in changes:
        table.add_row(
            change.group,
            f"{change.visits:,}",
            f"{change.before:.4f}",
            f"{change.after:.4f}",
            f"{change.after - change.before:+.4f}",
            f"[{change.low:+.4f}, {change.high:+.4f}]",
        )
    return table
