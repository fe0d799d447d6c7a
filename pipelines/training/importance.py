"""Which features the model leans on: total split gain, and mean |SHAP| on test rows.

Gain says where the trees split during training; mean |SHAP| (LightGBM's own TreeSHAP,
`pred_contrib`) says how far each feature moves held-out scores, in log-odds of the
uncalibrated score. They disagree when a feature splits often but changes little.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipelines.training.boosting import matrix


def _ranked(features: list[str], values: np.ndarray) -> dict[str, float]:
    return dict(sorted(zip(features, map(float, values), strict=True), key=lambda kv: -kv[1]))


def gain_importance(booster: lgb.Booster, features: list[str]) -> dict[str, float]:
    return _ranked(features, booster.feature_importance(importance_type="gain"))


def shap_importance(
    booster: lgb.Booster, test: pd.DataFrame, features: list[str], rows: int, seed: int
) -> dict[str, float]:
    """On a seeded sample of at most `rows` test rows: SHAP costs grow with rows x trees."""
    sample = test.sample(n=min(rows, len(test)), random_state=seed)
    contributions = booster.predict(matrix(sample, features), pred_contrib=True)
    return _ranked(features, np.abs(contributions[:, :-1]).mean(axis=0))
