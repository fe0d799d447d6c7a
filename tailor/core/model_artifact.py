"""Model artifacts on disk: `models/<version>/{model.txt,metadata.json,report.html}` and
`models/latest`.

Training writes them, the registry (`model_registry`) moves `latest`, and the API reads
them, so the layout lives in one place. The probability calibration is part of
`metadata.json` (key `calibration`), not a file of its own: the two are written
together, so a reader that loads the model as soon as `latest` moves can never see the
booster without its calibration.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from tailor.core.calibrator import Calibration, CalibrationError, calibration_from_dict

MODEL_FILE = "model.txt"
METADATA_FILE = "metadata.json"
REPORT_FILE = "report.html"
LATEST = "latest"
# Versions name folders and arrive in URLs and commands: one path segment, never `..`.
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class ModelNotFoundError(FileNotFoundError):
    pass


@dataclass(frozen=True)
class ModelArtifact:
    version: str
    booster: lgb.Booster
    metadata: dict[str, Any]
    calibration: Calibration | None = None

    @property
    def features(self) -> list[str]:
        return list(self.metadata["features"])

    @property
    def feature_service(self) -> str:
        return str(self.metadata["feature_service"])

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Calibrated propensities for rows whose columns follow `features`; NaN marks a
        missing value. An artifact trained before calibration existed scores raw."""
        scores = self.booster.predict(rows, num_threads=1)
        return scores if self.calibration is None else self.calibration.apply(scores)

    def percentile(self, propensity: float) -> float:
        """Where a (calibrated) propensity falls among the test split's calibrated
        scores: a [0, 1] scale that is comparable across model versions, unlike
        probabilities."""
        quantiles = self.metadata["score_quantiles"]
        return float(np.interp(propensity, quantiles, np.linspace(0.0, 1.0, len(quantiles))))

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """Per-feature SHAP contributions (last column is the bias) of the booster's raw
        score, in log-odds: they add up to the logit of the score before calibration,
        because calibration is a monotone map applied after the trees and has no
        per-feature share."""
        return self.booster.predict(rows, pred_contrib=True, num_threads=1)


def save_artifact(
    models_dir: Path, version: str, booster: lgb.Booster, metadata: dict[str, Any]
) -> Path:
    """Write a candidate; only the registry makes it champion."""
    target = models_dir / version
    target.mkdir(parents=True, exist_ok=False)
    booster.save_model(str(target / MODEL_FILE))
    (target / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    return target


def is_version_name(version: str) -> bool:
    return re.fullmatch(VERSION_PATTERN, version) is not None and version != LATEST


def point_latest_at(models_dir: Path, version: str) -> None:
    """Swap the `latest` link atomically so a reader never sees it missing."""
    temporary = models_dir / f".{LATEST}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(version, target_is_directory=True)
    os.replace(temporary, models_dir / LATEST)


def load_artifact(models_dir: Path, version: str = LATEST) -> ModelArtifact:
    folder = models_dir / version
    model_file, metadata_file = folder / MODEL_FILE, folder / METADATA_FILE
    if not model_file.is_file() or not metadata_file.is_file():
        raise ModelNotFoundError(
            f"no model at {folder} (needs {MODEL_FILE} and {METADATA_FILE}); run `tailor train`"
        )
    metadata = json.loads(metadata_file.read_text())
    try:
        calibration = (
            calibration_from_dict(metadata["calibration"]) if "calibration" in metadata else None
        )
    except CalibrationError as error:
        raise ModelNotFoundError(f"the model at {folder} is unusable: {error}") from error
    booster = lgb.Booster(model_file=str(model_file))
    return ModelArtifact(
        version=str(metadata["version"]),
        booster=booster,
        metadata=metadata,
        calibration=calibration,
    )
