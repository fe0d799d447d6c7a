"""The reference profile saved with each model (`models/<version>/reference_profile.json`):
how its inputs, the request context and its scores were distributed on rows of its
training window, so `tailor monitor` can tell when live decisions stop looking like
what the model learned from and was judged on.

Training profiles its test split, the most recent rows: the nearest to what will be
served, and free of the warm-up of windowed features (a 30-day count is short in the
first 30 days of any history). Measured on the demo's data, decisions of the day after
the history read PSI below 0.07 against the test split on every input but the calendar
ones; against the whole window up to 0.33, against the training split above 1 on the
30-day counts.

The scores are the artifact's own predictions (`ModelArtifact.predict`, what the API
serves), not the training loop's, so whatever serving applies to the booster is in
the reference too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.monitoring.bins import Bins, CategoricalBins, NumericBins, bins_from_json
from tailor.core.model_artifact import load_artifact
from tailor.core.settings import MonitoringSettings

PROFILE_FILE = "reference_profile.json"
FORMAT = 1
# Request context that training rows carry as columns and decisions in their request.
CONTEXT_FIELDS = ("device", "country")


class ReferenceProfileError(RuntimeError):
    """The model has no usable reference profile; the message says how to get one."""


@dataclass(frozen=True)
class ReferenceProfile:
    model_version: str
    rows: int
    window_start: str
    window_end: str
    features: dict[str, Bins]  # the model's inputs, numeric
    context: dict[str, Bins]  # request context, categorical
    score: NumericBins  # the served propensity

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "model_version": self.model_version,
            "rows": self.rows,
            "window": {"start": self.window_start, "end": self.window_end},
            "features": {name: bins.to_json() for name, bins in self.features.items()},
            "context": {name: bins.to_json() for name, bins in self.context.items()},
            "score": self.score.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReferenceProfile:
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, this release reads {FORMAT}")
        score = bins_from_json(data["score"])
        if not isinstance(score, NumericBins):
            raise ValueError("the score's buckets must be numeric")
        return cls(
            model_version=str(data["model_version"]),
            rows=int(data["rows"]),
            window_start=str(data["window"]["start"]),
            window_end=str(data["window"]["end"]),
            features={name: bins_from_json(b) for name, b in data["features"].items()},
            context={name: bins_from_json(b) for name, b in data["context"].items()},
            score=score,
        )


def build_reference_profile(
    frame: pd.DataFrame,
    version: str,
    features: list[str],
    scores: np.ndarray,
    config: MonitoringSettings,
) -> ReferenceProfile:
    """`frame` holds one row per training observation: the features, the context
    columns and `event_timestamp`; `scores` the model's prediction for each row."""
    times = frame["event_timestamp"]
    return ReferenceProfile(
        model_version=version,
        rows=len(frame),
        window_start=times.min().isoformat(),
        window_end=times.max().isoformat(),
        features={name: NumericBins.fit(frame[name], config.profile_bins) for name in features},
        context={
            name: CategoricalBins.fit(frame[name], config.profile_max_categories)
            for name in CONTEXT_FIELDS
            if name in frame
        },
        score=NumericBins.fit(scores, config.profile_bins),
    )


def write_reference_profile(
    model_dir: Path, frame: pd.DataFrame, config: MonitoringSettings
) -> Path:
    """Profile the saved model in `model_dir` on `frame`, its training window's rows."""
    artifact = load_artifact(model_dir.parent, model_dir.name)
    rows = frame[artifact.features].to_numpy(dtype="float64", na_value=np.nan)
    profile = build_reference_profile(
        frame, artifact.version, artifact.features, artifact.predict(rows), config
    )
    target = model_dir / PROFILE_FILE
    temporary = target.with_name(f".{PROFILE_FILE}.{os.getpid()}")
    temporary.write_text(json.dumps(profile.to_json(), indent=1))
    os.replace(temporary, target)
    return target


def load_reference_profile(models_dir: Path, version: str) -> ReferenceProfile:
    path = models_dir / version / PROFILE_FILE
    if not path.is_file():
        raise ReferenceProfileError(
            f"model {version} has no reference profile ({path}): models trained before "
            "monitoring existed have none; train one with `tailor train`"
        )
    try:
        return ReferenceProfile.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise ReferenceProfileError(
            f"{path} is not a valid reference profile ({error}); train again with "
            "`tailor train` or restore the file"
        ) from error
