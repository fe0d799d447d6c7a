"""Probability calibration fitted on the validation split, isotonic or Platt.

The two are compared by cross-fitting within the validation split: each fold's scores
are calibrated by a map fitted on the other folds, and the method whose out-of-fold
log loss is lower is then fitted on the whole split. So the choice is never made on
the rows a map was fitted on, and the test split stays untouched for the report.
scikit-learn fits both maps; the artifact keeps only their numbers
(`tailor.core.calibrator`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from pipelines.training.metrics import expected_calibration_error
from tailor.core.calibrator import (
    SCORE_EPSILON,
    Calibration,
    IsotonicCalibration,
    PlattCalibration,
    score_logit,
)


def fit_isotonic(scores: np.ndarray, labels: np.ndarray) -> IsotonicCalibration:
    fitted = IsotonicRegression(out_of_bounds="clip").fit(scores, labels)
    return IsotonicCalibration(
        tuple(map(float, fitted.X_thresholds_)), tuple(map(float, fitted.y_thresholds_))
    )


def fit_platt(scores: np.ndarray, labels: np.ndarray) -> PlattCalibration:
    """Unpenalized (`C=inf`): two parameters need no shrinkage on thousands of rows."""
    fitted = LogisticRegression(C=np.inf).fit(score_logit(scores).reshape(-1, 1), labels)
    return PlattCalibration(float(fitted.coef_[0, 0]), float(fitted.intercept_[0]))


FITTERS: dict[str, Callable[[np.ndarray, np.ndarray], Calibration]] = {
    "isotonic": fit_isotonic,
    "platt": fit_platt,
}


@dataclass(frozen=True)
class CalibrationChoice:
    calibration: Calibration
    # Out of fold within validation, per method, and the scores left as they are.
    cross_fitted: dict[str, dict[str, float]]

    def summary(self) -> dict[str, object]:
        return {
            "method": self.calibration.method,
            "chosen_by": "lower out-of-fold log loss, cross-fitted within the validation split",
            "cross_fitted_on_validation": self.cross_fitted,
        }


def _quality(labels: np.ndarray, scores: np.ndarray, bins: int) -> dict[str, float]:
    clipped = np.clip(scores, SCORE_EPSILON, 1 - SCORE_EPSILON)
    return {
        "logloss": float(log_loss(labels, clipped)),
        "ece": expected_calibration_error(labels, scores, bins),
    }


def choose_calibration(
    scores: np.ndarray, labels: np.ndarray, folds: int, bins: int, seed: int
) -> CalibrationChoice:
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    quality = {"uncalibrated": _quality(labels, scores, bins)}
    for method, fitter in FITTERS.items():
        out_of_fold = np.empty(len(scores))
        for fitted_on, held_out in splitter.split(scores.reshape(-1, 1), labels):
            calibration = fitter(scores[fitted_on], labels[fitted_on])
            out_of_fold[held_out] = calibration.apply(scores[held_out])
        quality[method] = _quality(labels, out_of_fold, bins)
    best = min(FITTERS, key=lambda method: quality[method]["logloss"])
    return CalibrationChoice(FITTERS[best](scores, labels), quality)


def calibration_effect(
    method: str, before: float, after: float, oracle_ece: float | None
) -> dict[str, object]:
    """Plain words for what calibration did to the test split's ECE, with the ECE of the
    true propensities there (when known): the part no model can remove."""
    reduced = after < before
    verdict = (
        f"{method.capitalize()} calibration {'reduced' if reduced else 'did not reduce'} the "
        f"expected calibration error on the test split: {before:.4f} before, {after:.4f} after."
    )
    if oracle_ece is not None:
        verdict += (
            f" The generator's true propensities have an ECE of {oracle_ece:.4f} on the same "
            "rows: that much comes from the test period and chance, not from the model."
        )
    return {"ece_reduced_on_test": reduced, "oracle_ece": oracle_ece, "verdict": verdict}
