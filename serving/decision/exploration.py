"""Which variant to serve once the candidates are ranked: the best one, or now and then
another, with the probability of each written down.

A placement may explore (epsilon-greedy with a floor): every eligible variant other
than the best gets `max(epsilon / n, floor)` of the decisions, the best one the rest.
The full distribution is part of the decision, so the log says exactly how likely the
served variant was, and a policy that would have chosen differently can be judged
from this log (off-policy evaluation needs every variant it may pick to have been
possible here). A forced variant is served for sure and a suppressed or forced_only
variant is never explored: rules keep their meaning. Without personal features the
safe fallback serves for sure too.
"""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING

from pydantic import Field

from serving.decision.rules.config import Strict

if TYPE_CHECKING:  # the resolution module reads placements, which read this config
    from serving.decision.rules.resolution import Resolution, RuledCandidate


class Exploration(Strict):
    epsilon: float = Field(
        ge=0, le=1, description="Share of decisions spread evenly over the eligible variants."
    )
    floor: float = Field(
        0.0, ge=0, le=0.5, description="Least probability of every eligible variant."
    )


Distribution = dict[str, float]  # variant id -> probability, over the eligible variants


def greedy(resolution: Resolution) -> Distribution:
    return {resolution.winner.variant.id: 1.0}


def _eligible(resolution: Resolution) -> list[RuledCandidate]:
    return [candidate for candidate in resolution.candidates if candidate.eligible]


def explored(
    resolution: Resolution, exploration: Exploration | None, personalized: bool
) -> Distribution:
    """The logging policy's distribution over variants for this decision."""
    if exploration is None or not personalized or resolution.winner.forced:
        return greedy(resolution)
    eligible = _eligible(resolution)
    others = [c.variant.id for c in eligible if c is not resolution.winner]
    share = max(exploration.epsilon / len(eligible), exploration.floor)
    if not others or share == 0:
        return greedy(resolution)
    distribution = dict.fromkeys(others, share)
    distribution[resolution.winner.variant.id] = 1.0 - share * len(others)
    return distribution


def uniform(resolution: Resolution) -> Distribution:
    """A random arm: every eligible variant equally likely."""
    eligible = _eligible(resolution)
    return {candidate.variant.id: 1.0 / len(eligible) for candidate in eligible}


def draw(distribution: Distribution, rng: random.Random) -> str:
    """One variant, in the distribution's order (so a seeded source replays)."""
    if len(distribution) == 1:
        return next(iter(distribution))
    point = rng.random()
    total = 0.0
    for variant_id, probability in distribution.items():
        total += probability
        if point < total:
            return variant_id
    return variant_id  # rounding left the point past the last edge


def served(resolution: Resolution, variant_id: str) -> Resolution:
    """The resolution with `variant_id` as the winner, first in the candidates; when it
    is not the best, no rule decided it: the draw did."""
    if variant_id == resolution.winner.variant.id:
        return resolution
    winner = next(c for c in resolution.candidates if c.variant.id == variant_id)
    ordered = [winner, *(c for c in resolution.candidates if c is not winner)]
    return dataclasses.replace(resolution, candidates=ordered, winner=winner, winning_rule=None)
