"""The hyperparameter search: folds that only look back, with the embargo, and a
seeded search that repeats itself and starts from the configured parameters."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from pipelines.training.boosting import dataset, default_params, fit, valid_logloss
from pipelines.training.split import expanding_folds
from pipelines.training.tuning import search_params
from tailor.core.settings import TrainingSettings

FEATURES = ["x1", "x2", "x3"]


def _frame(rows: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(8)
    values = rng.normal(size=(rows, len(FEATURES)))
    propensity = 1 / (1 + np.exp(-(values[:, 0] - 0.5 * values[:, 1] - 1)))
    frame = pd.DataFrame(values, columns=FEATURES)
    frame["event_timestamp"] = pd.date_range("2026-01-01", periods=rows, freq="30min", tz="UTC")
    frame["label"] = (rng.random(rows) < propensity).astype("int8")
    return frame


def test_each_fold_trains_on_the_past_and_validates_on_the_next_period():
    frame = _frame()
    folds = expanding_folds(frame, folds=3, horizon_hours=24)
    assert len(folds) == 3
    horizon = timedelta(hours=24)
    for index, fold in enumerate(folds):
        assert fold.train["event_timestamp"].max() + horizon <= fold.valid_start
        assert fold.valid["event_timestamp"].min() >= fold.valid_start
        if index + 1 < len(folds):
            assert fold.valid["event_timestamp"].max() < folds[index + 1].valid_start
            assert len(folds[index + 1].train) > len(fold.train)  # the window expands
    # The periods tile the window after the first one; the last runs to its end.
    assert sum(len(fold.valid) for fold in folds) == pytest.approx(len(frame) * 3 / 4, abs=3)
    assert folds[-1].valid["event_timestamp"].max() == frame["event_timestamp"].max()


def test_too_many_folds_for_the_data_name_the_settings():
    with pytest.raises(ValueError, match="tuning_folds"):
        expanding_folds(_frame(40), folds=9, horizon_hours=24)


def test_the_seeded_search_repeats_itself_and_tries_the_defaults_first():
    frame = _frame()
    config = TrainingSettings(
        tuning_trials=4, tuning_seconds=600, num_boost_round=200, early_stopping_rounds=10
    )
    defaults = default_params(config)
    first = search_params(frame, FEATURES, defaults, config)
    second = search_params(frame, FEATURES, defaults, config)
    assert first.params == second.params
    assert first.history == second.history
    assert len(first.history) == 4
    assert first.cv_logloss == min(value for value in first.history if value is not None)
    assert set(first.params) == set(defaults)
    # Trial 0 is the defaults: its score is theirs, fold by fold, computed here directly.
    losses = []
    for fold in expanding_folds(frame, config.tuning_folds, config.label_horizon_hours):
        train_set = dataset(fold.train, FEATURES)
        valid_set = dataset(fold.valid, FEATURES, reference=train_set)
        losses.append(valid_logloss(fit(defaults, train_set, valid_set, config)))
    assert first.history[0] == first.default_cv_logloss == pytest.approx(np.mean(losses))
