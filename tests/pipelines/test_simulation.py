"""The visit simulator: deterministic for a seed, and its users respond as the response
model documents (they click what they like)."""

from __future__ import annotations

from datetime import UTC, datetime

from pipelines.generate import simulated_catalogue
from pipelines.generator.response import ShownVariant
from pipelines.simulation import Visit, simulate
from tailor.core.outcome import Outcome
from tailor.core.settings import GeneratorSettings

CONFIG = GeneratorSettings(users=400, days=10, seed=3)
START = datetime(2026, 3, 1, tzinfo=UTC)


def _run(policy, seed: int = 5) -> list[Outcome]:
    recorded: list[Outcome] = []
    counter = iter(range(10**9))

    def decide(visit: Visit) -> ShownVariant:
        category = policy(visit)
        return ShownVariant(f"d{next(counter)}", f"show-{category}", category, (), "conversion")

    simulate(
        CONFIG,
        start=START,
        days=2,
        visits_per_day=2000,
        seed=seed,
        decide=decide,
        record=recorded.append,
    )
    return recorded


def _taste_policy(favourite: bool):
    """An oracle of taste: reads the visitor's ground truth, as only an oracle may."""
    names = simulated_catalogue(CONFIG).names

    def policy(visit: Visit) -> str:
        preferences = visit.truth.preferences
        return names[int(preferences.argmax() if favourite else preferences.argmin())]

    return policy


def test_the_same_seed_gives_the_same_visits_and_responses():
    policy = _taste_policy(favourite=True)
    assert _run(policy) == _run(policy)
    assert _run(policy) != _run(policy, seed=6)


def test_users_click_their_favourite_category_far_more_than_their_least_liked():
    def clicks(outcomes: list[Outcome]) -> float:
        impressions = sum(o.type == "impression" for o in outcomes)
        return sum(o.type == "click" for o in outcomes) / impressions

    liked, disliked = _run(_taste_policy(True)), _run(_taste_policy(False))
    assert clicks(liked) > 2.5 * clicks(disliked)
    assert all(o.ts > START for o in liked)
