"""A change in the conversion rate, found by ADWIN on the decisions' 0/1 conversions in
time order.

ADWIN (Bifet and Gavaldà, "Learning from time-changing data with adaptive windowing",
SDM 2007) keeps the longest recent window in which no two sub-windows have means
further apart than its Hoeffding-style bound at confidence `delta`, and signals a
change when it has to drop the older part. river's `drift.ADWIN` is used rather than a
version written here: it is the paper's ADWIN2 (exponential-histogram buckets, so
memory and time grow with the log of the window), maintained, tested upstream and
compiled (Rust), about 1 microsecond per decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from river import drift


@dataclass(frozen=True)
class ConversionChange:
    positions: list[int]  # where in the stream ADWIN signalled a change
    rate_now: float  # the conversion rate in ADWIN's window at the end of the stream
    rate_all: float  # over the whole stream

    @property
    def detected(self) -> bool:
        return bool(self.positions)


def detect_changes(converted: np.ndarray, delta: float) -> ConversionChange:
    detector = drift.ADWIN(delta=delta)
    positions = []
    for position, value in enumerate(converted):
        detector.update(int(value))
        if detector.drift_detected:
            positions.append(position)
    return ConversionChange(
        positions=positions,
        rate_now=float(detector.estimation),
        rate_all=float(converted.mean()) if len(converted) else 0.0,
    )
