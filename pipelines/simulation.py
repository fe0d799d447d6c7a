"""Simulated users who respond: visits by the generator's users, decided by whatever
policy the caller plugs in, answered with the ground truth of `generator.response`.

The users are the generator's own (the same seed rebuilds their latent traits), so a
simulated week follows the history the features and the model were built from. Each
visit asks `decide` for the variant to show; the response model draws whether it was
seen, clicked and bought, and the outcomes go to `record` as the API would take them.
Everything is drawn from one seeded stream: the same seed gives the same visits and,
for the same decisions, the same responses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from pipelines.generate import simulated_catalogue
from pipelines.generator.chunk import chunk_population
from pipelines.generator.population import COUNTRIES, MAIN_DEVICE_SHARE
from pipelines.generator.response import ResponseModel, ShownVariant, UserTruth, user_truths
from tailor.core.events import DEVICES
from tailor.core.outcome import Outcome
from tailor.core.settings import GeneratorSettings

_SIMULATION_SPAWN_KEY = (1,)  # apart from the catalogue's (0,) and the chunks' streams
_HOUR_SD = 1.5
# When, after the decision, each outcome is reported: inside every default window.
SEEN_AFTER = timedelta(seconds=2)
CLICKED_AFTER = timedelta(seconds=20)
CONVERTED_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class Visit:
    user_id: int
    moment: datetime
    device: str
    country: str
    # The simulator's ground truth about the visitor: only an oracle may read it.
    truth: UserTruth = field(repr=False, compare=False)


@dataclass(frozen=True)
class SimulationReport:
    visits: int
    impressions: int
    clicks: int
    conversions: int
    revenue: float
    start: datetime
    end: datetime
    seconds: float


class _Users:
    """The generator's users, rebuilt chunk by chunk from the seed."""

    def __init__(self, config: GeneratorSettings) -> None:
        parts = [
            chunk_population(
                config.seed,
                chunk,
                first,
                min(config.chunk_users, config.users - first + 1),
                config.categories,
                config.device_shares,
            )[1]
            for chunk, first in enumerate(range(1, config.users + 1, config.chunk_users))
        ]
        self.ids = np.concatenate([p.user_ids for p in parts])
        activity = np.concatenate([p.activity for p in parts])
        self.visit_share = activity / activity.sum()
        self.main_device = np.concatenate([p.main_device for p in parts])
        self.peak_hour = np.concatenate([p.peak_hour for p in parts])
        self.country = np.concatenate([p.country for p in parts])
        self.truths = user_truths(
            np.concatenate([p.category_cdf for p in parts]),
            np.concatenate([p.beta for p in parts]),
        )


def _day_visits(rng: np.random.Generator, users: _Users, day: datetime, count: int) -> list[Visit]:
    """A day's visits in time order: active users visit more, around their usual hour,
    mostly on their main device."""
    who = rng.choice(len(users.ids), size=count, p=users.visit_share)
    hours = np.mod(users.peak_hour[who] + rng.normal(0, _HOUR_SD, count), 24.0)
    other = (users.main_device[who] + rng.integers(1, len(DEVICES), count)) % len(DEVICES)
    device = np.where(rng.random(count) < MAIN_DEVICE_SHARE, users.main_device[who], other)
    return [
        Visit(
            user_id=int(users.ids[who[i]]),
            moment=day + timedelta(seconds=float(hours[i]) * 3600),
            device=DEVICES[device[i]],
            country=COUNTRIES[users.country[who[i]]],
            truth=users.truths[who[i]],
        )
        for i in np.argsort(hours, kind="stable")
    ]


def simulate(
    config: GeneratorSettings,
    *,
    start: datetime,
    days: int,
    visits_per_day: int,
    seed: int,
    decide: Callable[[Visit], ShownVariant],
    record: Callable[[Outcome], None],
    on_day: Callable[[int], None] | None = None,
) -> SimulationReport:
    """Run `days` days of `visits_per_day` visits from `start` (midnight UTC)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    started = time.perf_counter()
    users = _Users(config)
    responses = ResponseModel(simulated_catalogue(config))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=_SIMULATION_SPAWN_KEY))
    totals = {"impression": 0, "click": 0, "conversion": 0}
    revenue = 0.0
    first_day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for day_index in range(days):
        day = first_day + timedelta(days=day_index)
        for visit in _day_visits(rng, users, day, visits_per_day):
            shown = decide(visit)
            response = responses.respond(
                rng,
                visit.truth,
                shown,
                visit.device,
                visit.moment.hour,
                weekend=visit.moment.weekday() >= 5,
            )
            for kind, happened, after, value in (
                ("impression", response.seen, SEEN_AFTER, None),
                ("click", response.clicked, CLICKED_AFTER, None),
                ("conversion", response.converted, CONVERTED_AFTER, response.value),
            ):
                if happened:
                    totals[kind] += 1
                    record(
                        Outcome(
                            outcome_id=f"{shown.decision_id}:{kind}",
                            decision_id=shown.decision_id,
                            type=kind,
                            value=value,
                            ts=visit.moment + after,
                        )
                    )
            revenue += response.value or 0.0
        if on_day is not None:
            on_day(day_index + 1)
    return SimulationReport(
        visits=days * visits_per_day,
        impressions=totals["impression"],
        clicks=totals["click"],
        conversions=totals["conversion"],
        revenue=revenue,
        start=first_day,
        end=first_day + timedelta(days=days),
        seconds=time.perf_counter() - started,
    )
