"""How one feature's values are bucketed: fitted once on the reference, then applied to
any window, so both sides of a PSI count the same buckets.

Numbers: edges at the reference's quantiles (deciles by default), the first and the
last bucket open-ended, so a value below the reference's minimum or above its maximum
lands in an edge bucket instead of being dropped. Repeated quantiles (a 0/1 flag, a
count that is mostly 0) collapse into one edge: a flag gets two buckets, not ten.
Categories: a bucket per category the reference saw (the `max_categories` most
frequent) and one for any other. Both keep a last bucket for missing values, because
a feature that goes missing more often than in training has drifted too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from pipelines.monitoring.psi import shares

MISSING = "missing"
OTHER = "other"


@dataclass(frozen=True)
class NumericBins:
    """Bucket i holds (edges[i-1], edges[i]]; the first starts at -inf, the last ends
    at +inf; `shares` are the reference's, the missing bucket last."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]

    @classmethod
    def fit(cls, values: Sequence[Any] | np.ndarray, bins: int) -> NumericBins:
        numbers = _as_numbers(values)
        present = numbers[~np.isnan(numbers)]
        quantiles = np.arange(1, bins) / bins
        # Observed values as edges, never a value between two (a count's 0.3).
        edges = (
            np.unique(np.quantile(present, quantiles, method="inverted_cdf"))
            if present.size
            else np.empty(0)
        )
        unfitted = cls(edges=tuple(float(edge) for edge in edges), shares=())
        reference = shares(unfitted.counts(numbers))
        return cls(edges=unfitted.edges, shares=tuple(float(s) for s in reference))

    def counts(self, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        numbers = _as_numbers(values)
        missing = np.isnan(numbers)
        bucket = np.searchsorted(np.asarray(self.edges), numbers[~missing], side="left")
        counts = np.bincount(bucket, minlength=len(self.edges) + 1)
        return np.append(counts, missing.sum())

    def labels(self) -> list[str]:
        bounds = [-math.inf, *self.edges, math.inf]
        return [
            f"({low:g}, {high:g}{')' if math.isinf(high) else ']'}"
            for low, high in pairwise(bounds)
        ] + [MISSING]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "numeric", "edges": list(self.edges), "shares": list(self.shares)}


@dataclass(frozen=True)
class CategoricalBins:
    """A bucket per category, then `other`, then missing; `shares` are the reference's."""

    categories: tuple[str, ...]
    shares: tuple[float, ...]

    @classmethod
    def fit(cls, values: Sequence[Any], max_categories: int) -> CategoricalBins:
        present = pd.Series(values, dtype="object").dropna().astype(str)
        frequency = present.value_counts()
        # Most frequent first, ties by name: the same data always gives the same buckets.
        ranked = sorted(frequency.items(), key=lambda item: (-item[1], item[0]))
        unfitted = cls(categories=tuple(name for name, _ in ranked[:max_categories]), shares=())
        reference = shares(unfitted.counts(values))
        return cls(categories=unfitted.categories, shares=tuple(float(s) for s in reference))

    def counts(self, values: Sequence[Any]) -> np.ndarray:
        series = pd.Series(values, dtype="object")
        missing = series.isna().to_numpy()
        position = pd.Index(self.categories).get_indexer(series[~missing].astype(str))
        bucket = np.where(position < 0, len(self.categories), position)
        counts = np.bincount(bucket, minlength=len(self.categories) + 1)
        return np.append(counts, missing.sum())

    def labels(self) -> list[str]:
        return [*self.categories, OTHER, MISSING]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "categories": list(self.categories),
            "shares": list(self.shares),
        }


Bins = NumericBins | CategoricalBins


def bins_from_json(data: dict[str, Any]) -> Bins:
    """ValueError saying what is wrong with a stored bucketing."""
    kind = data.get("kind")
    if kind == "numeric":
        bins: Bins = NumericBins(
            edges=tuple(float(e) for e in data["edges"]),
            shares=tuple(float(s) for s in data["shares"]),
        )
        if list(bins.edges) != sorted(set(bins.edges)):
            raise ValueError("numeric edges must be strictly increasing")
    elif kind == "categorical":
        bins = CategoricalBins(
            categories=tuple(str(c) for c in data["categories"]),
            shares=tuple(float(s) for s in data["shares"]),
        )
    else:
        raise ValueError(f"kind must be numeric or categorical, not {kind!r}")
    if len(bins.shares) != len(bins.labels()):
        raise ValueError(f"{len(bins.shares)} shares for {len(bins.labels())} buckets")
    if any(s < 0 for s in bins.shares) or not math.isclose(sum(bins.shares), 1.0, abs_tol=1e-6):
        raise ValueError("shares must be non-negative and sum to 1")
    return bins


def _as_numbers(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Floats with NaN for a missing value (None, NaN or pandas' NA)."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    return pd.to_numeric(series).to_numpy(dtype="float64", na_value=np.nan)
