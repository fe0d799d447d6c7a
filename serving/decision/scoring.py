"""Score each candidate on three signals in [0, 1] and combine them with the weights.

Pure functions: everything the scorer needs is passed in, so a decision can be
replayed from its log and the explanation always adds up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from serving.decision.placements import ContextFit, Placement, Variant
from serving.decision.time_windows import hour_in_range

NEUTRAL = 0.5


@dataclass(frozen=True)
class UserSignals:
    """What the feature store and the model say about the user."""

    top_category: str | None
    top_category_share: float | None
    propensity_percentile: float | None  # None when the model is unavailable
    session_top_category: str | None = None  # only while a session is active
    session_top_share: float | None = None


@dataclass(frozen=True)
class RequestFacts:
    device: str | None
    hour: int
    page: str | None


@dataclass(frozen=True)
class ScoredCandidate:
    variant: Variant
    components: dict[str, float | None]
    score: float


def _affinity(category: str, top_category: str, share: float) -> float:
    share = min(max(share, 0.0), 1.0)
    return NEUTRAL + NEUTRAL * share if category == top_category else NEUTRAL * (1.0 - share)


def behavioral_score(
    variant: Variant, user: UserSignals, category_popularity: dict[str, float]
) -> float:
    """Affinity for the variant's category: the mean of the 30-day taste and the live
    session's interest, whichever are known; users with neither get the crowd's taste."""
    if variant.category is None:
        return NEUTRAL
    tastes = [
        (top, share)
        for top, share in (
            (user.top_category, user.top_category_share),
            (user.session_top_category, user.session_top_share),
        )
        if top is not None and share is not None
    ]
    if tastes:
        return sum(_affinity(variant.category, top, share) for top, share in tastes) / len(tastes)
    most_popular = max(category_popularity.values(), default=0.0)
    if most_popular <= 0:
        return NEUTRAL
    return category_popularity.get(variant.category, 0.0) / most_popular


def contextual_score(fit: ContextFit, facts: RequestFacts) -> float | None:
    """Share of the variant's stated context criteria that the request meets, among
    those the request lets us check: an unknown device or page is neither a match nor
    a miss. None (the signal gives up its weight) when none of the stated criteria can
    be checked; a variant that states none is neutral."""
    checks: list[bool] = []
    stated = bool(fit.devices) + (fit.hours is not None) + bool(fit.pages)
    if fit.devices and facts.device is not None:
        checks.append(facts.device in fit.devices)
    if fit.hours is not None:
        checks.append(hour_in_range(fit.hours, facts.hour))
    if fit.pages and facts.page is not None:
        checks.append(facts.page in fit.pages)
    if not stated:
        return NEUTRAL
    return sum(checks) / len(checks) if checks else None


def predictive_score(variant: Variant, percentile: float | None) -> float | None:
    """The propensity fallback: one number per user, turned by the variant's goal
    (likely buyers suit conversion variants, the others engagement ones)."""
    if percentile is None:
        return None
    return percentile if variant.goal == "conversion" else 1.0 - percentile


def combine(components: dict[str, float | None], weights: dict[str, float]) -> float:
    """Weighted mean over the signals that are available; missing ones give up their weight."""
    available = {name: value for name, value in components.items() if value is not None}
    total_weight = sum(weights[name] for name in available)
    if total_weight == 0:
        return NEUTRAL
    return sum(weights[name] * value for name, value in available.items()) / total_weight


def rank_candidates(
    placement: Placement,
    user: UserSignals,
    facts: RequestFacts,
    category_popularity: dict[str, float],
    predictive: Mapping[str, float] | None = None,
) -> list[ScoredCandidate]:
    """Candidates best first; ties keep the order of the placement file. `predictive`
    holds the response model's score per variant id when it scored this decision (a
    variant it did not score gives up the signal's weight); without it, the propensity
    fallback scores every variant."""
    weights = placement.weights.model_dump()
    scored = []
    for variant in placement.variants:
        components = {
            "behavioral": behavioral_score(variant, user, category_popularity),
            "contextual": contextual_score(variant.context, facts),
            "predictive": (
                predictive_score(variant, user.propensity_percentile)
                if predictive is None
                else predictive.get(variant.id)
            ),
        }
        scored.append(ScoredCandidate(variant, components, combine(components, weights)))
    return sorted(scored, key=lambda candidate: -candidate.score)
