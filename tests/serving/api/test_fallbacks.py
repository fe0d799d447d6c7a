"""Every dependency failure gives a safe decision with its reason, never a 5xx: a real
Redis paused and then stopped mid-test, a model file removed, a model that fails."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from tests.support import required
from tests.support.flow import Flow, Server, start_server
from tests.support.redis_profile import redis_profile_env
from tests.support.services import PrivateRedis

REQUEST = {
    "user_id": 15,
    "placement": "homepage_banner",
    "context": {"device": "desktop", "country": "DE", "page": "home"},
}
# Far above the 100 ms read budget, far below a client's retry schedule: proves the
# decision did not wait for the store, without timing anything finer than a hang.
PROMPT_SECONDS = 2.0


def _decide(server: Server) -> tuple[dict, float]:
    started = time.monotonic()
    with server.client() as client:
        response = client.post("/v1/personalize", json=REQUEST)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    return response.json(), elapsed


@pytest.fixture(scope="module")
def doomed_redis() -> Iterator[PrivateRedis]:
    """A Redis of this module's own: the tests stop it."""
    server = required.private_redis()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_api(flow: Flow, doomed_redis: PrivateRedis, tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("fallback_redis")
    with required.scratch_database() as registry_url:
        server = start_server(redis_profile_env(flow, home, doomed_redis.url, registry_url))
        yield server
        server.stop()


def test_a_slow_then_dead_redis_gives_the_fallback_promptly(redis_api, doomed_redis):
    healthy, _ = _decide(redis_api)
    assert healthy["personalized"] is True and healthy["degraded"] == []

    doomed_redis.client().execute_command("CLIENT", "PAUSE", "3000", "ALL")
    slow, elapsed = _decide(redis_api)
    assert "feature_store_timeout" in slow["degraded"]
    assert slow["variant"]["id"] == "welcome" and slow["personalized"] is False
    assert elapsed < PROMPT_SECONDS

    doomed_redis.stop()
    for _ in range(5):  # through the circuit breaker and past it
        dead, elapsed = _decide(redis_api)
        assert elapsed < PROMPT_SECONDS
        assert dead["variant"]["id"] == "welcome"
        assert dead["personalized"] is False
        assert {"feature_store_unavailable", "feature_store_timeout"} & set(dead["degraded"])
        assert dead["propensity"] is None
    with redis_api.client() as client:
        health = client.get("/health").json()
        logged = client.get(f"/v1/decisions/{dead['decision_id']}")
    assert health["status"] == "degraded" and health["feature_store"]["reachable"] is False
    assert logged.status_code == 200  # the log lives in PostgreSQL, not Redis


def _api_with_models(flow: Flow, tmp_path: Path, break_model) -> Server:
    models = tmp_path / "models"
    shutil.copytree(flow.models_dir, models, symlinks=True)
    break_model(models / "latest")
    return start_server(flow.env | {"TAILOR_MODELS_DIR": str(models)})


def test_a_removed_model_file_ranks_without_the_predictive_signal(flow, tmp_path):
    server = _api_with_models(flow, tmp_path, lambda latest: (latest / "model.txt").unlink())
    try:
        decision, _ = _decide(server)
    finally:
        server.stop()
    assert "model_unavailable" in decision["degraded"]
    assert decision["personalized"] is True  # behavior and context still count
    assert decision["model_version"] is None and decision["model_explanation"] is None
    weights = decision["weights"]
    for candidate in decision["candidates"]:
        components = candidate["components"]
        assert components["predictive"] is None
        expected = (
            weights["behavioral"] * components["behavioral"]
            + weights["contextual"] * components["contextual"]
        ) / (weights["behavioral"] + weights["contextual"])
        assert candidate["base_score"] == pytest.approx(expected)


def _swap_in_an_incompatible_model(latest: Path) -> None:
    """A valid LightGBM file trained on 2 features where the API passes dozens:
    LightGBM refuses every prediction, as with a model from another pipeline."""
    rows = np.random.default_rng(0).normal(size=(200, 2))
    booster = lgb.train(
        {"objective": "binary", "verbose": -1},
        lgb.Dataset(rows, label=(rows[:, 0] > 0).astype(int)),
        num_boost_round=3,
    )
    booster.save_model(str(latest / "model.txt"))
    metadata = json.loads((latest / "metadata.json").read_text())
    assert len(metadata["features"]) > 2


def test_a_failing_model_degrades_to_the_other_signals(flow, tmp_path):
    server = _api_with_models(flow, tmp_path, _swap_in_an_incompatible_model)
    try:
        decision, _ = _decide(server)
    finally:
        server.stop()
    assert "model_failed" in decision["degraded"]
    assert decision["propensity"] is None and decision["model_explanation"] is None
    assert all(c["components"]["predictive"] is None for c in decision["candidates"])
    assert decision["variant"]["id"] == decision["candidates"][0]["variant_id"]
