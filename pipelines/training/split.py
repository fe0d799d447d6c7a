"""Temporal train/validation/test split with an embargo.

Labels look `horizon` ahead, so a training row just before the validation start
would have a label that overlaps validation time; such rows are dropped.
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


def temporal_split(
    frame: pd.DataFrame, valid_fraction: float, test_fraction: float, horizon_hours: int
) -> TemporalSplit:
    times = frame["event_timestamp"]
    valid_start = times.quantile(1 - valid_fraction - test_fraction)
    test_start = times.quantile(1 - test_fraction)
    horizon = timedelta(hours=horizon_hours)
    train = frame[times + horizon <= valid_start]
    valid = frame[(times >= valid_start) & (times + horizon <= test_start)]
    test = frame[times >= test_start]
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        if part.empty or part["label"].nunique() < 2:
            raise ValueError(
                f"the {name} split has {len(part)} rows and not both label values; "
                "generate more days of events or widen training.valid_fraction/test_fraction"
            )
    return TemporalSplit(train, valid, test, valid_start, test_start)
