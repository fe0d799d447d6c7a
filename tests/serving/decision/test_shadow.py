"""Shadow arms on the real engine, store and model: they never change what is served,
their failures stay in the shadow log, and they log a full action distribution beside
the champion's decisions only."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from serving.decision.schemas import DecisionBody
from tailor.core.database.schema import shadow_decisions
from tests.support.engines import banner_placements, banner_request, in_process
from tests.support.flow import CLOCK_START, Flow

USERS = range(1, 151)
DEVICES = ("mobile", "desktop", "tablet")
MOMENT = CLOCK_START - timedelta(hours=1)
EXPLORATION = {"epsilon": 0.2, "floor": 0.01}
TASTE_FIRST = {"weights": {"behavioral": 0.8, "contextual": 0.1, "predictive": 0.1}}


def _decide_all(
    flow: Flow, folder: Path, arms: list[dict], **overrides
) -> tuple[list[DecisionBody], list[dict]]:
    folder.mkdir()
    placements = banner_placements(folder / "placements.yaml", arms, exploration=EXPLORATION)
    with in_process(flow, placements, folder / "decisions.db", seed=5, **overrides) as services:
        engine = services.engine
        snapshot = engine.config.current
        bodies = [
            engine.decide(banner_request(user, DEVICES[user % 3], MOMENT), snapshot)
            for user in USERS
        ]
    database = create_engine(f"sqlite:///{folder / 'decisions.db'}")
    with database.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(select(shadow_decisions))]
    database.dispose()
    return bodies, rows


def _served(body: DecisionBody) -> dict:
    """All a user sees or the log keeps of the decision, but the ids drawn for it (its
    own and its triggers' outbox rows) and the file version."""
    return body.model_dump(
        exclude={
            "decision_id": True,
            "config_version": True,
            "triggers": {"__all__": {"outbox_id"}},
        }
    )


def test_a_shadow_arm_never_changes_the_served_answer(flow: Flow, tmp_path):
    with_shadow, shadows = _decide_all(
        flow,
        tmp_path / "shadow",
        [{"key": "champion"}, {"key": "taste_first", "shadow": True, "policy": TASTE_FIRST}],
    )
    # The same users of the same arm, with the other arm live but taking nobody.
    without, none = _decide_all(
        flow,
        tmp_path / "plain",
        [{"key": "champion"}, {"key": "taste_first", "stopped": True, "policy": TASTE_FIRST}],
    )
    assert none == []
    assert [_served(b) for b in with_shadow] == [_served(b) for b in without]
    explored = [b for b in with_shadow if b.action_probability < 1]
    assert explored, "exploration should make some decisions uncertain"

    by_decision = {row["decision_id"]: row for row in shadows}
    in_control = [b for b in with_shadow if b.experiment and b.experiment.arm == "champion"]
    assert len(in_control) == len(USERS)
    assert set(by_decision) == {b.decision_id for b in in_control}
    for body in in_control:
        row = by_decision[body.decision_id]
        assert row["error"] is None
        assert row["served_variant_id"] == body.variant.id
        assert sum(row["action_distribution"].values()) == pytest.approx(1.0)
        assert row["variant_id"] in row["action_distribution"]
        assert set(row["scores"]) == {c.variant_id for c in body.candidates}
        logged = {c.variant_id: c.probability for c in body.candidates if c.probability > 0}
        assert row["champion_variant_id"] == max(logged, key=logged.get)
    agreeing = sum(row["variant_id"] == row["champion_variant_id"] for row in shadows)
    assert 0 < agreeing < len(shadows), "taste_first should agree on some users, not all"


def test_a_failing_shadow_degrades_only_the_shadow_log(flow: Flow, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(flow.models_dir, models, symlinks=True)
    broken = models / "broken_version"
    shutil.copytree(models / "latest", broken)
    (broken / "model.txt").write_text("not a LightGBM model\n")
    arms = [
        {"key": "champion"},
        {"key": "ghost", "shadow": True, "policy": {"model": "no_such_version"}},
        {"key": "broken", "shadow": True, "policy": {"model": "broken_version"}},
    ]
    bodies, shadows = _decide_all(flow, tmp_path / "failing", arms, models_dir=models)
    healthy, _ = _decide_all(
        flow, tmp_path / "healthy", [{"key": "champion"}, {"key": "live", "stopped": True}]
    )
    assert [_served(b) for b in bodies] == [_served(b) for b in healthy]
    errors = {(row["arm"], row["error"]) for row in shadows}
    assert errors == {
        ("ghost", "arm_model_unavailable:no_such_version"),
        ("broken", "arm_model_unavailable:broken_version"),
    }
    assert len(shadows) == 2 * len(USERS)
    assert all(row["action_distribution"] == {} for row in shadows)


def test_a_shadow_share_picks_a_stable_part_of_the_decisions(flow: Flow, tmp_path):
    arms = [
        {"key": "champion"},
        {"key": "half", "shadow": True, "shadow_share": 0.5, "policy": TASTE_FIRST},
    ]
    bodies, shadows = _decide_all(flow, tmp_path / "share", arms)
    assert 0.35 * len(bodies) < len(shadows) < 0.65 * len(bodies)
