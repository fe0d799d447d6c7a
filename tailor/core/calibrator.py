"""A fitted probability calibration, as the model artifact stores and applies it.

Training fits it with scikit-learn (`pipelines.training.calibration`); the API only
applies it, on every decision, so this holds the fitted numbers and applies them with
numpy exactly as scikit-learn's own `predict` would (a test checks that), without
pickling estimators into the artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Scores are clipped this far inside (0, 1) before their logit: a booster can return
# 0 or 1 in float64, and Platt scaling works on log-odds.
SCORE_EPSILON = 1e-7


def score_logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, SCORE_EPSILON, 1 - SCORE_EPSILON)
    return np.log(clipped / (1 - clipped))


@dataclass(frozen=True)
class IsotonicCalibration:
    """scikit-learn's `IsotonicRegression(out_of_bounds="clip")`: linear between its
    thresholds, flat beyond the first and last."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    method = "isotonic"

    def apply(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(scores, self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "x": list(self.x), "y": list(self.y)}


@dataclass(frozen=True)
class PlattCalibration:
    """Platt scaling on the score's log-odds: a logistic regression with one input."""

    slope: float
    intercept: float

    method = "platt"

    def apply(self, scores: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * score_logit(scores) + self.intercept)))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "slope": self.slope, "intercept": self.intercept}


Calibration = IsotonicCalibration | PlattCalibration


class CalibrationError(ValueError):
    """A stored calibration that cannot be applied."""


def calibration_from_dict(data: Any) -> Calibration:
    method = data.get("method") if isinstance(data, dict) else None
    if method not in (IsotonicCalibration.method, PlattCalibration.method):
        raise CalibrationError(f"unknown calibration method {method!r}; expected isotonic or platt")
    try:
        if method == IsotonicCalibration.method:
            calibration: Calibration = IsotonicCalibration(
                tuple(map(float, data["x"])), tuple(map(float, data["y"]))
            )
            numbers = [*calibration.x, *calibration.y]
        else:
            calibration = PlattCalibration(float(data["slope"]), float(data["intercept"]))
            numbers = [calibration.slope, calibration.intercept]
    except (KeyError, TypeError, ValueError) as error:
        raise CalibrationError(f"calibration {method!r} is malformed: {error!r}") from error
    if not np.all(np.isfinite(numbers)):
        raise CalibrationError(f"calibration {method!r} holds a NaN or infinite number")
    if isinstance(calibration, IsotonicCalibration):
        x, y = np.asarray(calibration.x), np.asarray(calibration.y)
        if not len(x) or len(x) != len(y) or np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0):
            raise CalibrationError(
                "isotonic calibration needs as many y as x, x strictly increasing and y "
                "non-decreasing"
            )
    return calibration
