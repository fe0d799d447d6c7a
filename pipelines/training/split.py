"""Temporal train/validation/test split, and time-series folds, with an embargo.

Labels look `horizon` ahead, so a training row just before the validation start
would have a label that overlaps validation time; such rows are dropped. The
hyperparameter search's folds inside the training window drop them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd


@dataclass(frozen=True)
class TemporalSplit:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    valid_start: pd.Timestamp
    test_start: pd.Timestamp


@dataclass(frozen=True)
class Fold:
    """Train on everything labelled before `valid_start`, validate on the next period."""

    train: pd.DataFrame
    valid: pd.DataFrame
    valid_start: pd.Timestamp


def _labelled_by(times: pd.Series, moment: pd.Timestamp, horizon_hours: int) -> pd.Series:
    """Rows whose label window closes by `moment`: they reveal nothing after it."""
    return times + timedelta(hours=horizon_hours) <= moment


def _check(name: str, part: pd.DataFrame, fix: str) -> None:
    if part.empty or part["label"].nunique() < 2:
        raise ValueError(f"the {name} has {len(part)} rows and not both label values; {fix}")


def temporal_split(
    frame: pd.DataFrame, valid_fraction: float, test_fraction: float, horizon_hours: int
) -> TemporalSplit:
    times = frame["event_timestamp"]
    valid_start = times.quantile(1 - valid_fraction - test_fraction)
    test_start = times.quantile(1 - test_fraction)
    train = frame[_labelled_by(times, valid_start, horizon_hours)]
    valid = frame[(times >= valid_start) & _labelled_by(times, test_start, horizon_hours)]
    test = frame[times >= test_start]
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        _check(
            f"{name} split",
            part,
            "generate more days of events or widen training.valid_fraction/test_fraction",
        )
    return TemporalSplit(train, valid, test, valid_start, test_start)


def expanding_folds(frame: pd.DataFrame, folds: int, horizon_hours: int) -> list[Fold]:
    """Cut the window into `folds + 1` periods of equal row counts; fold k trains on
    periods 0..k-1 (less the embargo before period k) and validates on period k."""
    times = frame["event_timestamp"]
    starts = [times.quantile(k / (folds + 1)) for k in range(1, folds + 1)]
    result = []
    for index, start in enumerate(starts):
        period = times >= start
        if index + 1 < folds:
            period &= times < starts[index + 1]
        fold = Fold(frame[_labelled_by(times, start, horizon_hours)], frame[period], start)
        for name, part in (("training", fold.train), ("validation", fold.valid)):
            _check(
                f"{name} part of tuning fold {index + 1}",
                part,
                "lower training.tuning_folds or set training.tuning_trials=0",
            )
        result.append(fold)
    return result
