"""The model a new one would replace, judged on the new one's test rows.

When the old model's features are all in this run's frame, it scores the very same
test rows, so the two are compared like for like. Otherwise only its recorded metrics
are shown, marked as not comparable: they come from another test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.training.boosting import matrix
from pipelines.training.metrics import classification_metrics
from tailor.core.model_artifact import ModelArtifact, ModelNotFoundError, load_artifact


def current_model(models_dir: Path) -> ModelArtifact | None:
    """What `latest` points at now: read before this run saves anything."""
    try:
        return load_artifact(models_dir)
    except ModelNotFoundError:
        return None


def compare_with(
    previous: ModelArtifact, test: pd.DataFrame, test_start: pd.Timestamp, bins: int
) -> tuple[dict[str, Any], np.ndarray | None]:
    """The comparison for the metadata, and the old model's test scores when it had them."""
    summary: dict[str, Any] = {
        "version": previous.version,
        "calibrated": previous.calibration is not None,
    }
    missing = sorted(set(previous.features) - set(test.columns))
    if missing:
        return summary | {
            "comparable": False,
            "metrics": previous.metadata.get("metrics", {}),
            "note": f"not comparable: its features {missing} are not in this run's data, so "
            "these are the metrics it recorded on its own test split",
        }, None
    scores = previous.predict(matrix(test, previous.features))
    summary |= {
        "comparable": True,
        "metrics": classification_metrics(test["label"].to_numpy(), scores, bins),
        "note": "scored on the same test rows as the new model",
    }
    trained_until = previous.metadata.get("training_window", {}).get("test_start")
    if trained_until is not None and pd.Timestamp(trained_until) > test_start:
        summary["note"] += (
            f"; it trained and validated on data up to {trained_until}, after this test "
            "split begins, so it may have seen these rows and its numbers flatter it"
        )
    return summary, scores
