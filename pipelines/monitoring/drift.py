"""PSI of every profiled input, and of the score, between a model's reference profile
and the decisions of a recent window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.monitoring.bins import Bins
from pipelines.monitoring.decision_window import ScoredDecision
from pipelines.monitoring.profile import ReferenceProfile
from pipelines.monitoring.psi import psi, shares


@dataclass(frozen=True)
class Shift:
    values: int  # how many values the window had for it
    psi: float | None  # None: fewer than the minimum, not judged
    buckets: list[str]
    expected: list[float]  # the reference's shares
    actual: list[float] | None  # the window's

    def to_json(self) -> dict[str, Any]:
        return {
            "values": self.values,
            "psi": self.psi,
            "buckets": self.buckets,
            "expected": self.expected,
            "actual": self.actual,
        }


def shift(bins: Bins, values: Sequence[Any], minimum: int, epsilon: float) -> Shift:
    expected = list(bins.shares)
    if len(values) < minimum:
        return Shift(len(values), None, bins.labels(), expected, None)
    actual = shares(bins.counts(values))
    return Shift(
        len(values),
        psi(np.asarray(expected), actual, epsilon),
        bins.labels(),
        expected,
        [float(share) for share in actual],
    )


def input_shifts(
    profile: ReferenceProfile, window: list[ScoredDecision], minimum: int, epsilon: float
) -> dict[str, Shift]:
    """Each model input over the decisions whose vector was logged (a vector of another
    model may lack one), and each context field over every scored decision."""
    vectors = [decision.features for decision in window if decision.features is not None]
    shifts = {
        name: shift(bins, [v[name] for v in vectors if name in v], minimum, epsilon)
        for name, bins in profile.features.items()
    }
    for name, bins in profile.context.items():
        values = [decision.context.get(name) for decision in window]
        shifts[name] = shift(bins, values, minimum, epsilon)
    return shifts


def score_shift(
    profile: ReferenceProfile, window: list[ScoredDecision], minimum: int, epsilon: float
) -> Shift:
    """Only the profiled model's scores: another version's are on another scale."""
    scores = [d.propensity for d in window if d.model_version == profile.model_version]
    return shift(profile.score, scores, minimum, epsilon)
