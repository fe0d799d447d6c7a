"""`train_response_model`: learn P(click) and P(conversion) of a served candidate from
the logged decisions, and publish the artifact serving reads.

Each logged decision is one row (the variant it served), weighted by 1 / p of the
logging policy (clipped), so variants the champion favours do not look better merely
for being shown to the users it favours them for. The split is temporal: the latest
decisions are held out for the metrics and for the percentile tables that put each
target's probabilities on the [0, 1] scale of the placement weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from pipelines.training.response.dataset import (
    LoggedDecision,
    logged_decisions,
    training_set,
    variant_catalogue,
)
from tailor.core.database.engine import open_database
from tailor.core.response_artifact import TARGETS, Target, save_response_model
from tailor.core.response_features import CandidateSchema, candidate_rows
from tailor.core.settings import ResponseModelSettings, TailorSettings

QUANTILES = 101


class NotEnoughOutcomes(RuntimeError):
    """Too few conversions in the log to learn from: the propensity fallback stays."""


@dataclass(frozen=True)
class ResponseTrainingResult:
    version: str
    path: Path
    decisions: int
    clicks: int
    conversions: int
    metrics: dict[str, dict[str, float]]  # target -> auc, ipw_auc, logloss on held-out
    seconds: float


def _params(config: ResponseModelSettings) -> dict[str, Any]:
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_data_in_leaf": config.min_data_in_leaf,
        "lambda_l2": config.lambda_l2,
        "seed": config.seed,
        "deterministic": True,
        "num_threads": config.num_threads,
        "verbose": -1,
    }


def _fit(
    config: ResponseModelSettings,
    columns: list[str],
    rows: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    train: slice,
    valid: slice,
) -> lgb.Booster:
    def dataset(part: slice, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(
            rows[part],
            label=labels[part],
            weight=weights[part],
            feature_name=columns,
            reference=reference,
            params={"verbose": -1},
        )

    fitted = dataset(train)
    return lgb.train(
        _params(config),
        fitted,
        num_boost_round=config.num_boost_round,
        valid_sets=[dataset(valid, fitted)],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )


def _metrics(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Unweighted AUC (how the model ranks what was served) and IPW-weighted AUC (how
    it would rank under uniform serving); NaN when the held-out part has one class."""
    if labels.min() == labels.max():
        return {"auc": math.nan, "ipw_auc": math.nan, "logloss": math.nan}
    return {
        "auc": float(roc_auc_score(labels, scores)),
        "ipw_auc": float(roc_auc_score(labels, scores, sample_weight=weights)),
        "logloss": float(log_loss(labels, np.clip(scores, 1e-6, 1 - 1e-6))),
    }


def _quantiles(
    boosters: dict[Target, lgb.Booster],
    schema: CandidateSchema,
    held_out: list[LoggedDecision],
    catalogue: dict[str, list],
) -> dict[str, list[float]]:
    """Each target's predictions over every candidate of the held-out decisions."""
    rows = np.vstack([candidate_rows(schema, d.context, catalogue[d.placement]) for d in held_out])
    levels = np.linspace(0.0, 1.0, QUANTILES)
    return {
        target: np.quantile(booster.predict(rows, num_threads=1), levels).tolist()
        for target, booster in boosters.items()
    }


def train_response_model(
    settings: TailorSettings, *, end: datetime | None = None, version: str | None = None
) -> ResponseTrainingResult:
    """Train on the decisions of `response_model.window_days` before `end` (default:
    now less the conversion window, so every outcome counted has had time to arrive),
    save under `models/response/<version>` and point `latest` at it. Raises
    `NotEnoughOutcomes` below `response_model.min_conversions`."""
    started = datetime.now(UTC)
    config = settings.response_model
    if end is None:
        end = settings.clock.now() - timedelta(seconds=settings.outcomes.conversion_window_seconds)
    start = end - timedelta(days=config.window_days)
    database = open_database(settings.decision_database_url, settings.decisions.auto_migrate)
    try:
        logged = logged_decisions(database, start, end)
    finally:
        database.dispose()
    conversions = sum(d.converted for d in logged)
    if conversions < config.min_conversions:
        raise NotEnoughOutcomes(
            f"{conversions} conversions among {len(logged)} logged decisions from "
            f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}; "
            f"response_model.min_conversions is {config.min_conversions}"
        )
    data = training_set(logged, config.weight_clip)
    count = len(logged)
    test_start = count - math.ceil(count * config.test_fraction)
    valid_start = test_start - math.ceil(count * config.valid_fraction)
    train, valid, test = (
        slice(0, valid_start),
        slice(valid_start, test_start),
        slice(test_start, count),
    )
    columns = data.schema.columns
    labels = {"click": data.clicked, "conversion": data.converted}
    boosters: dict[Target, lgb.Booster] = {
        target: _fit(config, columns, data.rows, labels[target], data.weights, train, valid)
        for target in TARGETS
    }
    metrics = {
        target: _metrics(
            labels[target][test],
            boosters[target].predict(data.rows[test], num_threads=1),
            data.weights[test],
        )
        for target in TARGETS
    }
    version = version or started.strftime("%Y%m%dT%H%M%S%fZ")
    metadata = {
        "version": version,
        "kind": "response",
        "created_at": started.isoformat(),
        "schema": data.schema.to_dict(),
        "features": columns,
        "training_window": {"start": start.isoformat(), "end": end.isoformat()},
        "counts": {
            "decisions": count,
            "clicks": int(data.clicked.sum()),
            "conversions": int(conversions),
            "train": valid_start,
            "valid": test_start - valid_start,
            "test": count - test_start,
        },
        "metrics": metrics,
        "weight_clip": config.weight_clip,
        "clipped_share": float(np.mean(data.weights >= config.weight_clip)),
        "best_iteration": {target: boosters[target].best_iteration for target in TARGETS},
        "quantiles": _quantiles(
            boosters, data.schema, logged[test_start:], variant_catalogue(logged)
        ),
    }
    path = save_response_model(settings.models_dir, version, boosters, metadata)
    return ResponseTrainingResult(
        version=version,
        path=path,
        decisions=count,
        clicks=int(data.clicked.sum()),
        conversions=int(conversions),
        metrics=metrics,
        seconds=(datetime.now(UTC) - started).total_seconds(),
    )
