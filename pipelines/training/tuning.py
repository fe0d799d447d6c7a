"""Hyperparameter search: Optuna's TPE over time-series folds of the training window.

Each trial trains on the past and validates on the next period, fold by fold, with
early stopping as the final model has, and scores the mean validation log loss. The
first trial is the configured parameters, so the defaults' score is on record and the
search starts from them. The sampler is seeded: a run repeats itself when the trial
bound, not the clock, ends the search. After each fold a trial reports its running
mean, and the median pruner stops one that is worse than earlier trials were there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd

from pipelines.training.boosting import dataset, fit, valid_logloss
from pipelines.training.split import expanding_folds
from tailor.core.settings import TrainingSettings

# name -> (kind, low, high); every range is searched on a log scale but the sampling
# fractions. Each range is widened to hold the configured value when it lies outside.
SEARCH_SPACE: dict[str, tuple[type, float, float]] = {
    "learning_rate": (float, 0.01, 0.3),
    "num_leaves": (int, 4, 127),
    "min_data_in_leaf": (int, 20, 2000),
    "lambda_l2": (float, 1e-3, 100.0),
    "feature_fraction": (float, 0.5, 1.0),
    "bagging_fraction": (float, 0.5, 1.0),
}
LINEAR = {"feature_fraction", "bagging_fraction"}


@dataclass(frozen=True)
class SearchResult:
    params: dict[str, Any]  # the best trial's full LightGBM parameters
    cv_logloss: float
    default_cv_logloss: float
    history: list[float | None]  # each trial's CV log loss in order; None if pruned
    seconds: float

    @property
    def default_won(self) -> bool:
        """The search found nothing better than where it started (trial 0)."""
        return self.cv_logloss >= self.default_cv_logloss

    def summary(self) -> dict[str, Any]:
        return {
            "trials": len(self.history),
            "pruned": sum(value is None for value in self.history),
            "seconds": round(self.seconds, 2),
            "cv_logloss_default": self.default_cv_logloss,
            "cv_logloss_best": self.cv_logloss,
            "history": self.history,
        }


def _suggest(trial: optuna.Trial, defaults: dict[str, Any]) -> dict[str, Any]:
    chosen = {}
    for name, (kind, low, high) in SEARCH_SPACE.items():
        low, high = min(low, defaults[name]), max(high, defaults[name])
        log = name not in LINEAR
        if kind is int:
            chosen[name] = trial.suggest_int(name, int(low), int(high), log=log)
        else:
            chosen[name] = trial.suggest_float(name, low, high, log=log)
    return chosen


def search_params(
    frame: pd.DataFrame, features: list[str], defaults: dict[str, Any], config: TrainingSettings
) -> SearchResult:
    """The best parameters found within the budget, starting from `defaults`."""
    started = time.perf_counter()
    folds = []
    for fold in expanding_folds(frame, config.tuning_folds, config.label_horizon_hours):
        train_set = dataset(fold.train, features)
        folds.append((train_set, dataset(fold.valid, features, reference=train_set)))

    def objective(trial: optuna.Trial) -> float:
        params = defaults | _suggest(trial, defaults)
        losses = []
        for step, (train_set, valid_set) in enumerate(folds):
            losses.append(valid_logloss(fit(params, train_set, valid_set, config)))
            trial.report(sum(losses) / len(losses), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return sum(losses) / len(losses)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize",
        # Five random trials before TPE models the rest (ten by default): budgets here
        # are a dozen trials, not hundreds.
        sampler=optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )
    study.enqueue_trial({name: defaults[name] for name in SEARCH_SPACE})
    study.optimize(objective, n_trials=config.tuning_trials, timeout=config.tuning_seconds)
    # The first trial always runs to the end: the pruner waits for five.
    history = [
        trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None
        for trial in study.trials
    ]
    return SearchResult(
        params=defaults | study.best_trial.params,
        cv_logloss=float(study.best_value),
        default_cv_logloss=float(study.trials[0].value),
        history=history,
        seconds=time.perf_counter() - started,
    )
