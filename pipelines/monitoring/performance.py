"""How well the logged propensities still rank and estimate conversions: live AUC,
expected calibration error and observed over expected conversions.

A drift in the inputs may or may not hurt the model; these say whether it did. They
need decisions whose conversion window is over (a younger decision may still
convert), so they run on an older window than drift does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score


@dataclass(frozen=True)
class Performance:
    decisions: int
    conversions: int
    auc: float | None  # None: fewer than min_conversions of either class
    ece: float | None
    observed_expected: float | None  # conversions / sum of propensities; 1 is calibrated


def expected_calibration_error(probabilities: np.ndarray, outcomes: np.ndarray, bins: int) -> float:
    """Mean |observed rate - mean probability| over equal-count buckets of the sorted
    probabilities, weighted by bucket size. Equal counts, not equal widths: the
    propensities crowd near the base rate, and equal-width buckets would leave most of
    them in one or two."""
    order = np.argsort(probabilities, kind="stable")
    gaps = [
        len(bucket) * abs(outcomes[bucket].mean() - probabilities[bucket].mean())
        for bucket in np.array_split(order, bins)
        if len(bucket)
    ]
    return float(sum(gaps) / len(probabilities))


def live_performance(
    propensity: np.ndarray, converted: np.ndarray, min_conversions: int, bins: int
) -> Performance:
    conversions = int(converted.sum())
    enough = min(conversions, len(converted) - conversions) >= min_conversions
    expected = float(propensity.sum())
    return Performance(
        decisions=len(converted),
        conversions=conversions,
        auc=float(roc_auc_score(converted, propensity)) if enough else None,
        ece=expected_calibration_error(propensity, converted, bins) if enough else None,
        observed_expected=conversions / expected if enough and expected > 0 else None,
    )
