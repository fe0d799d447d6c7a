"""Train the purchase-propensity model and write a versioned artifact (a candidate:
`retrain.train_and_judge` decides whether it becomes champion).

Users who opted out are left out of the training rows. Who they are is read from the
decision database first: if it cannot be read, training stops before any work
(`OptOutsUnreadable`) instead of training on everyone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from feature_repo.feature_services import personalization_v1
from feature_repo.store import open_store
from pipelines.monitoring.profile import write_reference_profile
from pipelines.training.dataset import historical_features, model_features
from pipelines.training.metrics import (
    classification_metrics,
    oracle_auc,
    recency_frequency_score,
)
from pipelines.training.observations import build_observations
from pipelines.training.split import temporal_split
from tailor.core.database.consent import read_opted_out
from tailor.core.model_artifact import save_artifact
from tailor.core.settings import TailorSettings

FEATURE_SERVICE = personalization_v1.name


@dataclass(frozen=True)
class TrainReport:
    version: str
    path: Path
    rows: dict[str, int]
    metrics: dict[str, float]
    baseline_auc: float
    oracle_auc: float | None
    best_iteration: int
    seconds: float
    holdout: pd.DataFrame  # the test split with features and labels, for the gate


def _matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    return frame[features].astype("float64").to_numpy()


def train_model(
    settings: TailorSettings, on_step: Callable[[str], None] | None = None
) -> TrainReport:
    started = time.perf_counter()
    step = on_step or (lambda _message: None)
    config = settings.training

    step("reading who opted out")
    opted_out = read_opted_out(settings.decision_database_url, settings.decisions.auto_migrate)
    step(f"building observations and labels from events, without {len(opted_out):,} opted out")
    observations = build_observations(
        settings.events_dir,
        config.label_horizon_hours,
        config.max_observations,
        excluded_users=opted_out,
    )
    step(f"fetching point-in-time features for {len(observations):,} observations")
    store = open_store(settings)
    service = store.get_feature_service(FEATURE_SERVICE)
    features = model_features(service)
    frame = historical_features(store, service, observations)

    split = temporal_split(
        frame, config.valid_fraction, config.test_fraction, config.label_horizon_hours
    )
    step(f"training LightGBM on {len(split.train):,} rows, validating on {len(split.valid):,}")
    params = {
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
        "num_threads": 2,
        "verbose": -1,
    }
    train_set = lgb.Dataset(
        _matrix(split.train, features), label=split.train["label"], feature_name=features
    )
    valid_set = lgb.Dataset(
        _matrix(split.valid, features), label=split.valid["label"], reference=train_set
    )
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=config.num_boost_round,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )

    step(f"evaluating on {len(split.test):,} test rows")
    test_labels = split.test["label"].to_numpy()
    scores = booster.predict(_matrix(split.test, features), num_iteration=booster.best_iteration)
    metrics = classification_metrics(test_labels, scores)
    baseline = classification_metrics(test_labels, recency_frequency_score(split.test))["auc"]
    oracle = oracle_auc(split.test, settings.ground_truth_dir)

    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    importance = booster.feature_importance(importance_type="gain")
    metadata = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "feature_service": FEATURE_SERVICE,
        "features": features,
        "label": f"purchase within {config.label_horizon_hours} h after a session start",
        "training_window": {
            "start": split.train["event_timestamp"].min().isoformat(),
            "end": split.test["event_timestamp"].max().isoformat(),
            "valid_start": split.valid_start.isoformat(),
            "test_start": split.test_start.isoformat(),
        },
        "rows": {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)},
        "opted_out_users_excluded": len(opted_out),
        "base_rate": {
            name: float(part["label"].mean())
            for name, part in (("train", split.train), ("test", split.test))
        },
        "metrics": metrics,
        "baseline_auc": baseline,
        "score_quantiles": np.quantile(scores, np.linspace(0.0, 1.0, 101)).tolist(),
        "oracle_auc": oracle,
        "best_iteration": booster.best_iteration,
        "params": params,
        "feature_importance_gain": dict(
            sorted(zip(features, map(float, importance), strict=True), key=lambda kv: -kv[1])
        ),
    }
    path = save_artifact(settings.models_dir, version, booster, metadata)
    # Drift monitoring's reference: the most recent rows, nearest to what will be served.
    write_reference_profile(path, split.test, settings.monitoring)
    return TrainReport(
        version=version,
        path=path,
        rows=metadata["rows"],
        metrics=metrics,
        baseline_auc=baseline,
        oracle_auc=oracle,
        best_iteration=booster.best_iteration,
        seconds=time.perf_counter() - started,
        holdout=split.test,
    )
