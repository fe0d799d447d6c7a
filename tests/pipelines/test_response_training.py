"""The response model's training on a real SQLite decision log with real LightGBM: a
simulated log whose logging policy is biased by a trait the model never sees, so only
the inverse-propensity weights let it recover the known truth."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert

from pipelines.training.response.dataset import ipw_weights, logged_decisions, training_set
from pipelines.training.response.train import NotEnoughOutcomes, train_response_model
from tailor.core.database.engine import open_database
from tailor.core.database.schema import decisions, outcomes
from tailor.core.response_artifact import (
    has_response_model,
    load_response_model,
    response_models_dir,
)
from tailor.core.response_features import CandidateVariant, candidate_rows, response_context
from tailor.core.settings import TailorSettings

START = datetime(2026, 3, 1, tzinfo=UTC)
END = START + timedelta(days=7)
VARIANTS = {
    "books_picks": CandidateVariant("books_picks", "books", ("inspiration",), "conversion"),
    "sports_deal": CandidateVariant("sports_deal", "sports", ("deal",), "conversion"),
}
DECISIONS = 8000


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logit))


def true_click(hidden: np.ndarray, books: np.ndarray) -> np.ndarray:
    """Users with the hidden trait love books; the others prefer sports a little."""
    return _sigmoid(np.where(books, -2.5 + 3.0 * hidden, -1.6))


def _decision_row(index: int, at: datetime, variant: CandidateVariant, p: float, x: float) -> dict:
    body = {
        "variant": {
            "id": variant.variant_id,
            "content": {},
            "category": variant.category,
            "tags": list(variant.tags),
            "goal": variant.goal,
        },
        "signals": {"top_category_30d": "books", "top_category_share_30d": 0.4},
    }
    return {
        "decision_id": f"{index:032x}",
        "created_at": at,
        "user_id": index % 500 + 1,
        "placement": "banner",
        "variant_id": variant.variant_id,
        "config_version": "test",
        "model_version": "m1",
        "degraded": [],
        "request": {"user_id": 1, "placement": "banner", "context": {"device": "mobile"}},
        "decision": body,
        "action_probability": p,
        "propensity": 0.1,
        "features": {"sessions_30d": x},
    }


@pytest.fixture(scope="module")
def simulated_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[TailorSettings, np.ndarray]:
    """A week of decisions: the logging policy shows books to 90% of the users with the
    hidden trait and 10% of the others (it knew something the log does not keep)."""
    home = tmp_path_factory.mktemp("response")
    settings = TailorSettings(home=home, response_model={"min_conversions": 50})
    rng = np.random.default_rng(3)
    hidden = rng.random(DECISIONS) < 0.5
    books_share = np.where(hidden, 0.9, 0.1)
    books = rng.random(DECISIONS) < books_share
    probability = np.where(books, books_share, 1 - books_share)
    clicked = rng.random(DECISIONS) < true_click(hidden.astype(float), books)
    converted = clicked & (rng.random(DECISIONS) < 0.3)
    noise = rng.normal(size=DECISIONS)
    moments = [
        START + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(0, 7 * 86400, DECISIONS))
    ]
    database = open_database(settings.decision_database_url)
    with database.begin() as connection:
        connection.execute(
            insert(decisions),
            [
                _decision_row(
                    i,
                    moments[i],
                    VARIANTS["books_picks" if books[i] else "sports_deal"],
                    float(probability[i]),
                    float(noise[i]),
                )
                for i in range(DECISIONS)
            ],
        )
        rows = [
            {
                "outcome_id": f"{i}:{kind}",
                "decision_id": f"{i:032x}",
                "type": kind,
                "value": None,
                "ts": moments[i] + timedelta(minutes=1),
                "recorded_at": moments[i] + timedelta(minutes=1),
            }
            for i in range(DECISIONS)
            for kind, happened in (("click", clicked[i]), ("conversion", converted[i]))
            if happened
        ]
        connection.execute(insert(outcomes), rows)
    database.dispose()
    return settings, hidden


def _mean_click(settings: TailorSettings, version: str, features: np.ndarray) -> dict[str, float]:
    """The model's click rate of each variant, were it shown to every logged user."""
    model = load_response_model(settings.models_dir, version)
    means = {}
    for name, variant in VARIANTS.items():
        rows = np.vstack(
            [
                candidate_rows(
                    model.schema,
                    response_context(
                        {"sessions_30d": x},
                        {"top_category_30d": "books", "top_category_share_30d": 0.4},
                        "mobile",
                        12,
                    ),
                    [variant],
                )
                for x in features
            ]
        )
        means[name] = float(model.predict(rows, "click").mean())
    return means


def test_weights_are_the_clipped_inverse_of_the_logging_probability():
    probabilities = np.array([1.0, 0.5, 0.1, 0.04, 0.01])
    assert ipw_weights(probabilities, 20.0).tolist() == [1.0, 2.0, 10.0, 20.0, 20.0]


def test_training_rows_hold_what_each_decision_logged(simulated_log):
    settings, _ = simulated_log
    database = open_database(settings.decision_database_url)
    try:
        logged = logged_decisions(database, START, START + timedelta(days=1))
    finally:
        database.dispose()
    assert logged and all(START <= d.decided_at < START + timedelta(days=1) for d in logged)
    data = training_set(logged, clip=5.0)
    columns = data.schema.columns
    # Each row carries its own decision's logged value and hour, never a later one.
    assert data.rows[:, columns.index("sessions_30d")].tolist() == [
        d.context.features["sessions_30d"] for d in logged
    ]
    assert data.rows[:, columns.index("hour")].tolist() == [d.decided_at.hour for d in logged]
    expected = np.minimum(1 / np.array([d.action_probability for d in logged]), 5.0)
    np.testing.assert_array_equal(data.weights, expected)
    books = data.rows[:, columns.index("category_books")] == 1
    assert data.rows[books, columns.index("is_top_category")].tolist() == [1.0] * books.sum()
    assert data.rows[books, columns.index("top_share_of_category")].tolist() == [0.4] * books.sum()


def test_reweighting_recovers_the_truth_the_biased_policy_hides(simulated_log):
    settings, hidden = simulated_log
    features = np.random.default_rng(5).normal(size=2000)
    truth = {
        "books_picks": float(true_click(hidden.astype(float), np.ones_like(hidden)).mean()),
        "sports_deal": float(true_click(hidden.astype(float), np.zeros_like(hidden)).mean()),
    }
    weighted = train_response_model(settings, end=END, version="weighted")
    unweighted = train_response_model(
        settings.model_copy(
            update={
                "response_model": settings.response_model.model_copy(update={"weight_clip": 1.0})
            }
        ),
        end=END,
        version="unweighted",
    )
    recovered = _mean_click(settings, weighted.version, features)
    naive = _mean_click(settings, unweighted.version, features)
    for name, rate in truth.items():
        assert recovered[name] == pytest.approx(rate, abs=0.03), (name, recovered, truth)
    # Without the weights, books look as good as the trait-holders it was shown to found it.
    assert naive["books_picks"] - truth["books_picks"] > 0.08, (naive, truth)
    metadata = load_response_model(settings.models_dir).metadata
    assert metadata["version"] == "unweighted"  # `latest` follows the newest
    assert metadata["counts"]["decisions"] == DECISIONS
    assert metadata["weight_clip"] == 1.0
    assert set(metadata["metrics"]) == {"click", "conversion"}
    assert not math.isnan(weighted.metrics["click"]["auc"])


def test_too_few_conversions_train_nothing(tmp_path: Path, simulated_log):
    settings, _ = simulated_log
    scarce = settings.model_copy(
        update={
            "models_dir": tmp_path,
            "response_model": settings.response_model.model_copy(update={"min_conversions": 10**6}),
        }
    )
    with pytest.raises(NotEnoughOutcomes, match="min_conversions is 1000000"):
        train_response_model(scarce, end=END)
    assert not has_response_model(tmp_path)
    assert not response_models_dir(tmp_path).exists()
