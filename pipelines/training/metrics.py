"""Scores of a model, a heuristic baseline and the generator's oracle on one split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score


def classification_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {
        "auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "logloss": float(log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7))),
    }


def recency_frequency_score(frame: pd.DataFrame) -> np.ndarray:
    """The heuristic a team would ship without a model: frequent and recent buyers first."""
    sessions = frame["sessions_30d"].fillna(0).to_numpy(dtype=float)
    days_idle = frame["hours_since_last_event_now"].fillna(24 * 365).to_numpy(dtype=float) / 24
    return sessions / (1.0 + days_idle)


def oracle_auc(test: pd.DataFrame, ground_truth_dir: Path) -> float | None:
    """AUC of the generator's true propensity on the test rows; None without ground truth."""
    files = sorted(ground_truth_dir.glob("*.parquet")) if ground_truth_dir.is_dir() else []
    if not files:
        return None
    truth = pq.read_table(files, columns=["session_id", "propensity_24h"]).to_pandas()
    joined = test[["session_id", "label"]].merge(truth, on="session_id", how="left")
    if joined["propensity_24h"].isna().any():
        return None
    return float(roc_auc_score(joined["label"], joined["propensity_24h"]))
