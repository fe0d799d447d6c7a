"""Population stability index of a recent window against a reference, bucket by bucket.

PSI = sum over buckets of (actual - expected) * ln(actual / expected), with the shares
of the reference (expected) and of the window (actual) in the same buckets: the
symmetric Kullback-Leibler divergence of the two bucketed distributions. Common
readings: below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a major one
(`monitoring.psi_warn` and `psi_alert`).

A bucket empty on one side would make its term infinite, so an empty bucket counts as
holding `epsilon` of its side instead (1e-4 by default, the value Evidently uses).
That bounds the term of a bucket the reference never saw: a value that takes 10% of
the window adds (0.1 - 1e-4) * ln(0.1 / 1e-4) = 0.69, an alert on its own, while one
stray row among thousands adds almost nothing.
"""

from __future__ import annotations

import numpy as np


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    if total <= 0:
        raise ValueError("no values to take shares of")
    return counts / total


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float) -> float:
    """PSI of two share vectors over the same buckets (each summing to 1)."""
    if expected.shape != actual.shape:
        raise ValueError(f"bucket counts differ: {expected.shape} and {actual.shape}")
    expected = np.where(expected > 0, expected, epsilon)
    actual = np.where(actual > 0, actual, epsilon)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
