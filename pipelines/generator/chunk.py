"""Simulate one chunk of users over the whole period, day by day.

A chunk owns its random stream, seeded from (seed, chunk index), so its data does not
depend on how many chunks ran before it or on anything outside the chunk; memory is
bounded by the chunk's users and one day of its events.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa

from pipelines.generator.behaviour import user_day_logit
from pipelines.generator.catalogue import Catalogue
from pipelines.generator.day import SECOND_US, simulate_day
from pipelines.generator.population import Population, draw_population
from pipelines.generator.state import UserState
from pipelines.generator.tables import day_tables


def chunk_population(
    seed: int,
    chunk: int,
    first_user_id: int,
    users: int,
    categories: int,
    device_shares: dict[str, float],
) -> tuple[np.random.Generator, Population]:
    """The chunk's random stream and its users' latent traits, its first draws: the
    simulator rebuilds the same users from the same seed without replaying their days."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, chunk]))
    return rng, draw_population(rng, first_user_id, users, categories, device_shares)


def simulate_chunk(
    seed: int,
    chunk: int,
    first_user_id: int,
    users: int,
    catalogue: Catalogue,
    first_day: date,
    days: int,
    device_shares: dict[str, float],
) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Yield (events, ground truth) tables of each simulated day in order."""
    rng, population = chunk_population(
        seed, chunk, first_user_id, users, len(catalogue.names), device_shares
    )
    state = UserState(users, len(catalogue.names))
    for day_index in range(days):
        day = first_day + timedelta(days=day_index)
        day_start_us = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        day_start_us *= SECOND_US
        user_logit = user_day_logit(population, state.day_start(day_index))
        batch = simulate_day(rng, population, user_logit, weekend=day.weekday() >= 5)
        state.record(day_index, batch.activity(users, len(catalogue.names), day_start_us))
        yield day_tables(batch, population, catalogue, day, day_start_us)
