"""LightGBM as training uses it: the configured parameters and one early-stopped fit,
shared by the hyperparameter search's folds and the final models."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from tailor.core.settings import TrainingSettings


def default_params(config: TrainingSettings) -> dict[str, Any]:
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_data_in_leaf": config.min_data_in_leaf,
        "lambda_l2": config.lambda_l2,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "seed": config.seed,
        "deterministic": True,
        "num_threads": config.num_threads,
        "verbose": -1,
    }


def matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    return frame[features].astype("float64").to_numpy()


def dataset(
    frame: pd.DataFrame, features: list[str], reference: lgb.Dataset | None = None
) -> lgb.Dataset:
    """Binned once and reused by every trial: `feature_pre_filter` off, because it
    would tie the bins to the first trial's `min_data_in_leaf`."""
    return lgb.Dataset(
        matrix(frame, features),
        label=frame["label"].to_numpy(),
        feature_name=features,
        reference=reference,
        params={"feature_pre_filter": False, "verbose": -1},
    )


def fit(
    params: dict[str, Any], train: lgb.Dataset, valid: lgb.Dataset, config: TrainingSettings
) -> lgb.Booster:
    """Trees are added until the validation log loss has not improved for
    `early_stopping_rounds`; the booster keeps its best iteration."""
    return lgb.train(
        params,
        train,
        num_boost_round=config.num_boost_round,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )


def valid_logloss(booster: lgb.Booster) -> float:
    """The validation log loss at the booster's best iteration."""
    return float(booster.best_score["valid_0"]["binary_logloss"])
