"""Hot model swap on a real server under a steady load of decisions.

The challenger is the flow's champion cut to its first trees (`save_model(num_iteration)`),
a real model whose scores differ, so each answer's propensity shows which model made
it: an answer that names one version and carries the other's score would be half a
model. The same user and moment throughout keep the features fixed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pytest
import sqlalchemy as sa

from tailor.core.model_artifact import LATEST, METADATA_FILE, MODEL_FILE
from tests.support.flow import CLOCK_START, Flow, Server, run_tailor, start_server
from tests.support.load import PacedLoad, Post, Recording
from tests.support.waiting import wait_for

ADMIN_KEY = "swap-test-key"
REQUEST = {
    "user_id": 7,
    "placement": "homepage_banner",
    "context": {"device": "mobile", "country": "US", "timestamp": CLOCK_START.isoformat()},
}


def _derived_version(models: Path, source: str, version: str, **metadata: Any) -> str:
    """A real model from `source`: its first 20 trees, under a new version name."""
    target = models / version
    target.mkdir()
    booster = lgb.Booster(model_file=str(models / source / MODEL_FILE))
    booster.save_model(str(target / MODEL_FILE), num_iteration=20)
    document = json.loads((models / source / METADATA_FILE).read_text())
    (target / METADATA_FILE).write_text(json.dumps(document | {"version": version} | metadata))
    for extra in (models / source).iterdir():  # calibration and the like travel along
        if extra.name not in {MODEL_FILE, METADATA_FILE} and extra.is_file():
            shutil.copy(extra, target / extra.name)
    return version


@pytest.fixture(scope="module")
def home(flow: Flow, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("model_swap")
    shutil.copytree(flow.models_dir, home / "models", symlinks=True)
    return home


@pytest.fixture(scope="module")
def server(flow: Flow, home: Path) -> Iterator[Server]:
    env = flow.env | {
        "TAILOR_MODELS_DIR": str(home / "models"),
        "TAILOR_DECISIONS__DATABASE_URL": f"sqlite:///{home / 'decisions.db'}",
        "TAILOR_SERVING__MODEL_POLL_SECONDS": "0.2",
        "TAILOR_SERVING__ADMIN_API_KEY": ADMIN_KEY,
    }
    started = start_server(env)
    yield started
    started.stop()


def _tailor(flow: Flow, home: Path, *args: str) -> str:
    result = run_tailor(flow.env | {"TAILOR_MODELS_DIR": str(home / "models")}, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _serving(server: Server) -> str | None:
    with server.client() as client:
        return client.get("/health").json()["model_version"]


def test_a_promotion_swaps_the_model_under_load_without_an_error(flow, home, server):
    models = home / "models"
    champion = os.readlink(models / LATEST)
    challenger = _derived_version(models, champion, "challenger-1")
    recording = Recording("champion")

    def decide(post: Post) -> None:
        post("/v1/personalize", REQUEST)

    with PacedLoad(server.url, recording, [decide] * 3, per_second=40, limit=4000):
        wait_for(lambda: len(recording.exchanges("/v1/personalize")) >= 30, "decisions", 30)
        recording.enter("promoted")
        _tailor(flow, home, "models", "promote", challenger, "--reason", "swap test", "--by", "t")
        wait_for(lambda: _serving(server) == challenger, "the swap", 30)
        recording.enter("swapped")
        count = len(recording.exchanges("/v1/personalize"))
        wait_for(lambda: len(recording.exchanges("/v1/personalize")) >= count + 30, "decisions", 30)
        recording.enter("rolled back")
        _tailor(flow, home, "models", "rollback", "--reason", "swap test", "--by", "t")
        with server.client() as client:  # the admin reload swaps at once, before the poll
            answer = client.post("/v1/admin/models/reload", headers={"X-API-Key": ADMIN_KEY})
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == champion
        recording.enter("restored")
        count = len(recording.exchanges("/v1/personalize"))
        wait_for(lambda: len(recording.exchanges("/v1/personalize")) >= count + 30, "decisions", 30)

    exchanges = recording.exchanges("/v1/personalize")
    assert [e for e in exchanges if e.status != 200] == []
    score_of: dict[str, set[float]] = {}
    for exchange in exchanges:
        version = exchange.answer["model_version"]
        assert version in {champion, challenger}, exchange.answer
        if exchange.answer["propensity"] is not None:  # None: a feature read timed out
            score_of.setdefault(version, set()).add(exchange.answer["propensity"])
    # One score per model: no answer mixed one version's name with another's score.
    assert {v: len(s) for v, s in score_of.items()} == {champion: 1, challenger: 1}
    assert score_of[champion] != score_of[challenger]
    by_phase = {
        phase: {e.answer["model_version"] for e in exchanges if e.within(phase)}
        for phase in ("champion", "swapped", "restored")
    }
    assert by_phase == {"champion": {champion}, "swapped": {challenger}, "restored": {champion}}


def test_every_logged_decision_names_its_model(home, server):
    with server.client() as client:
        decided = client.post("/v1/personalize", json=REQUEST).json()
    server.stop()  # flushes the decision log
    engine = sa.create_engine(f"sqlite:///{home / 'decisions.db'}")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT model_version FROM tailor_decisions")).all()
    engine.dispose()
    assert len(rows) > 90 and decided["model_version"] is not None
    assert [row for row in rows if row.model_version is None] == []


def test_a_model_this_api_cannot_serve_is_refused_and_the_champion_stays(flow, home, tmp_path):
    models = home / "models"
    champion = os.readlink(models / LATEST)
    foreign = _derived_version(models, champion, "foreign-1", feature_service="another_service")
    env = flow.env | {
        "TAILOR_MODELS_DIR": str(models),
        "TAILOR_DECISIONS__DATABASE_URL": f"sqlite:///{tmp_path / 'decisions.db'}",
        "TAILOR_SERVING__MODEL_POLL_SECONDS": "0.2",
        "TAILOR_SERVING__ADMIN_API_KEY": ADMIN_KEY,
    }
    server = start_server(env)
    try:
        _tailor(flow, home, "models", "promote", foreign, "--reason", "wrong service", "--by", "t")
        with server.client() as client:
            answer = client.post("/v1/admin/models/reload", headers={"X-API-Key": ADMIN_KEY})
            assert answer.status_code == 409, answer.text
            assert "another_service" in answer.json()["detail"]["error"]
            health = client.get("/health").json()
            decided = client.post("/v1/personalize", json=REQUEST)
        assert health["model_version"] == champion
        assert health["model_reload_rejected"] == foreign
        assert decided.status_code == 200 and decided.json()["model_version"] == champion
    finally:
        server.stop()
        _tailor(flow, home, "models", "rollback", "--reason", "undo", "--by", "t")
