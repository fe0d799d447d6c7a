"""Scores of a model, a heuristic baseline and the generator's oracle on one split."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from tailor.core.calibrator import SCORE_EPSILON


def classification_metrics(labels: np.ndarray, scores: np.ndarray, bins: int) -> dict[str, float]:
    """Ranking (AUC, PR-AUC, top-decile lift) and probability quality (log loss, Brier,
    ECE over `bins` equal-count buckets) of one set of scores."""
    return {
        "auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "logloss": float(log_loss(labels, np.clip(scores, SCORE_EPSILON, 1 - SCORE_EPSILON))),
        "brier": float(brier_score_loss(labels, scores)),
        "ece": expected_calibration_error(labels, scores, bins),
        "top_decile_lift": top_decile_lift(labels, scores),
    }


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int) -> float:
    """Mean |observed rate - mean score| over `bins` equal-count buckets of the sorted
    scores, weighted by bucket size. Equal counts, not equal widths: propensities crowd
    near the base rate, and equal-width bins would leave most of them in two or three.
    With as many rows in each bucket, the buckets are those of scikit-learn's
    `calibration_curve(strategy="quantile")`."""
    order = np.argsort(scores, kind="stable")
    gaps = [
        len(bucket) * abs(labels[bucket].mean() - scores[bucket].mean())
        for bucket in np.array_split(order, bins)
        if len(bucket)
    ]
    return float(sum(gaps) / len(scores))


def top_decile_lift(labels: np.ndarray, scores: np.ndarray) -> float:
    """Positive rate among the tenth of rows scored highest, over the overall rate.
    Rows tied at the cut count by their share (the expectation under a random order
    of ties), so a score with plateaus (isotonic calibration) is not flattered or
    punished by row order."""
    labels = np.asarray(labels, dtype=float)
    top = math.ceil(len(scores) / 10)
    cut = np.sort(scores)[::-1][top - 1]
    above, tied = scores > cut, scores == cut
    positives = labels[above].sum() + (top - above.sum()) * labels[tied].mean()
    return float(positives / top / labels.mean())


def recency_frequency_score(frame: pd.DataFrame) -> np.ndarray:
    """The heuristic a team would ship without a model: frequent and recent buyers first."""
    sessions = frame["sessions_30d"].fillna(0).to_numpy(dtype=float)
    days_idle = frame["hours_since_last_event_now"].fillna(24 * 365).to_numpy(dtype=float) / 24
    return sessions / (1.0 + days_idle)


def oracle_scores(test: pd.DataFrame, ground_truth_dir: Path) -> np.ndarray | None:
    """The generator's true propensity of each test row; None without ground truth."""
    files = sorted(ground_truth_dir.glob("*.parquet")) if ground_truth_dir.is_dir() else []
    if not files:
        return None
    truth = pq.read_table(files, columns=["session_id", "propensity_24h"]).to_pandas()
    joined = test[["session_id"]].merge(truth, on="session_id", how="left")
    if joined["propensity_24h"].isna().any():
        return None
    return joined["propensity_24h"].to_numpy(dtype=float)
