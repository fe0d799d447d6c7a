"""The models a training run weighs: the configured parameters and the search's best.

Each is trained on the training split with early stopping on validation, calibrated on
validation and scored on test. The one with the lower validation log loss is kept:
validation is later than every fold the search saw, while the search's own score
flatters its winner (the best of many noisy trials). Test decides nothing; it only
reports, so its numbers stay honest, including when the tuned model loses there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from pipelines.training.boosting import dataset, fit, matrix, valid_logloss
from pipelines.training.calibration import CalibrationChoice, choose_calibration
from pipelines.training.metrics import classification_metrics
from pipelines.training.split import TemporalSplit
from pipelines.training.tuning import SEARCH_SPACE
from tailor.core.settings import TrainingSettings

DEFAULT, TUNED = "default", "tuned"


@dataclass(frozen=True)
class Candidate:
    name: str
    params: dict[str, Any]
    booster: lgb.Booster
    valid_logloss: float
    calibration: CalibrationChoice
    test_uncalibrated: np.ndarray
    test_scores: np.ndarray  # calibrated
    metrics: dict[str, float]  # on test, calibrated
    metrics_uncalibrated: dict[str, float]

    def summary(self) -> dict[str, Any]:
        return {
            "params": {name: self.params[name] for name in SEARCH_SPACE},
            "best_iteration": self.booster.best_iteration,
            "valid_logloss": self.valid_logloss,
            "calibration": self.calibration.calibration.method,
            "test_metrics": self.metrics,
            "test_metrics_uncalibrated": self.metrics_uncalibrated,
        }


def train_candidate(
    name: str,
    params: dict[str, Any],
    split: TemporalSplit,
    features: list[str],
    config: TrainingSettings,
) -> Candidate:
    train_set = dataset(split.train, features)
    booster = fit(params, train_set, dataset(split.valid, features, reference=train_set), config)
    valid_scores = booster.predict(matrix(split.valid, features), num_threads=config.num_threads)
    choice = choose_calibration(
        valid_scores,
        split.valid["label"].to_numpy(),
        config.calibration_folds,
        config.calibration_bins,
        config.seed,
    )
    raw = booster.predict(matrix(split.test, features), num_threads=config.num_threads)
    calibrated = choice.calibration.apply(raw)
    labels = split.test["label"].to_numpy()
    return Candidate(
        name=name,
        params=params,
        booster=booster,
        valid_logloss=valid_logloss(booster),
        calibration=choice,
        test_uncalibrated=raw,
        test_scores=calibrated,
        metrics=classification_metrics(labels, calibrated, config.calibration_bins),
        metrics_uncalibrated=classification_metrics(labels, raw, config.calibration_bins),
    )


def select(candidates: list[Candidate], why_only_one: str) -> tuple[Candidate, str]:
    """The candidate with the lower validation log loss (the default on a tie), and why."""
    if len(candidates) == 1:
        return candidates[0], why_only_one
    chosen = min(candidates, key=lambda candidate: candidate.valid_logloss)
    other = next(candidate for candidate in candidates if candidate is not chosen)
    return chosen, (
        f"{chosen.name}: lower validation log loss ({chosen.valid_logloss:.5f} against "
        f"{other.valid_logloss:.5f} for {other.name}); validation is later than every "
        "fold the search saw"
    )


def tuned_against_default(default: Candidate, tuned: Candidate) -> dict[str, Any]:
    """Plain words for how the tuned model did on test, whichever was kept."""
    worse = []
    if tuned.metrics["auc"] < default.metrics["auc"]:
        worse.append("AUC")
    if tuned.metrics["logloss"] > default.metrics["logloss"]:
        worse.append("log loss")
    numbers = (
        f"AUC {tuned.metrics['auc']:.4f} against {default.metrics['auc']:.4f}, log loss "
        f"{tuned.metrics['logloss']:.4f} against {default.metrics['logloss']:.4f}"
    )
    if worse:
        verdict = (
            "The tuned parameters are worse than the defaults on the test split in "
            f"{' and '.join(worse)}: {numbers}."
        )
    else:
        verdict = (
            f"The tuned parameters are at least as good as the defaults on the test split: "
            f"{numbers}."
        )
    return {"tuned_at_least_as_good": not worse, "verdict": verdict}
