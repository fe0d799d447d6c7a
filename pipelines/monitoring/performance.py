"""How well the logged propensities still rank and estimate conversions: live AUC,
expected calibration error (measured as training measures it) and observed over
expected conversions.

A drift in the inputs may or may not hurt the model; these say whether it did. They
need decisions whose conversion window is over (a younger decision may still
convert), so they run on an older window than drift does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from pipelines.training.metrics import expected_calibration_error


@dataclass(frozen=True)
class Performance:
    decisions: int
    conversions: int
    auc: float | None  # None: fewer than min_conversions of either class
    ece: float | None
    observed_expected: float | None  # conversions / sum of propensities; 1 is calibrated


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
        ece=expected_calibration_error(converted, propensity, bins) if enough else None,
        observed_expected=conversions / expected if enough and expected > 0 else None,
    )
