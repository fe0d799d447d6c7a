"""Response model artifacts on disk: `models/response/<version>/{click.txt,
conversion.txt,metadata.json}` and `models/response/latest`.

`tailor train-response` writes them and the API reads them, so the layout lives here,
beside the propensity model's (`model_artifact`), whose version naming and atomic
`latest` link it shares. The metadata holds the candidate columns
(`response_features.CandidateSchema`), the training window, counts, metrics, the
weight clip and each target's percentile table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np

from tailor.core.model_artifact import LATEST, METADATA_FILE, ModelNotFoundError, point_latest_at
from tailor.core.response_features import CandidateSchema

RESPONSE_DIR = "response"
Target = Literal["click", "conversion"]
TARGETS: tuple[Target, ...] = ("click", "conversion")


class ResponseModelNotFoundError(ModelNotFoundError):
    """No response model at the place asked: serving falls back to the propensity model."""


class ResponseModelUnusableError(ModelNotFoundError):
    """A response model is there but cannot be read (corrupt or incomplete files)."""


def response_models_dir(models_dir: Path) -> Path:
    return models_dir / RESPONSE_DIR


def target_for_goal(goal: str) -> Target:
    """What a variant is for decides which probability scores it: a conversion
    variant by the chance it converts, an engagement one by the chance it is clicked."""
    return "click" if goal == "engagement" else "conversion"


@dataclass(frozen=True)
class ResponseModel:
    version: str
    boosters: dict[Target, lgb.Booster]
    metadata: dict[str, Any]

    @property
    def schema(self) -> CandidateSchema:
        return CandidateSchema.from_dict(self.metadata["schema"])

    def predict(self, rows: np.ndarray, target: Target) -> np.ndarray:
        """Probabilities of `target` for rows in `schema.columns` order, one call."""
        return self.boosters[target].predict(rows, num_threads=1)

    def percentile(self, probabilities: np.ndarray, target: Target) -> np.ndarray:
        """Where probabilities fall among the held-out candidates' predictions: the
        [0, 1] scale the placement weights expect."""
        quantiles = self.metadata["quantiles"][target]
        return np.interp(probabilities, quantiles, np.linspace(0.0, 1.0, len(quantiles)))

    def contributions(self, rows: np.ndarray, target: Target) -> np.ndarray:
        """Per-column SHAP values in log-odds; the last column is the bias."""
        return self.boosters[target].predict(rows, pred_contrib=True, num_threads=1)


def save_response_model(
    models_dir: Path,
    version: str,
    boosters: dict[Target, lgb.Booster],
    metadata: dict[str, Any],
) -> Path:
    """Write the artifact, then point `latest` at it: a response model has no gate of
    its own yet, so the newest trained one serves (after an API restart)."""
    root = response_models_dir(models_dir)
    target = root / version
    target.mkdir(parents=True, exist_ok=False)
    for name, booster in boosters.items():
        booster.save_model(str(target / f"{name}.txt"))
    (target / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    point_latest_at(root, version)
    return target


def has_response_model(models_dir: Path) -> bool:
    """Whether one was ever published (a `latest` link, even a broken one)."""
    return (response_models_dir(models_dir) / LATEST).is_symlink()


def load_response_model(models_dir: Path, version: str = LATEST) -> ResponseModel:
    folder = response_models_dir(models_dir) / version
    if not folder.exists():
        raise ResponseModelNotFoundError(
            f"no response model at {folder}; run `tailor train-response`"
        )
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text())
        boosters: dict[Target, lgb.Booster] = {
            name: lgb.Booster(model_file=str(folder / f"{name}.txt")) for name in TARGETS
        }
        CandidateSchema.from_dict(metadata["schema"])
        for name in TARGETS:
            if len(metadata["quantiles"][name]) < 2:
                raise ValueError(f"quantiles.{name} needs at least 2 values")
    except (OSError, ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as error:
        raise ResponseModelUnusableError(
            f"the response model at {folder} is unusable ({error}); retrain it with "
            "`tailor train-response`"
        ) from error
    return ResponseModel(version=str(metadata["version"]), boosters=boosters, metadata=metadata)
