"""Experiments in the placements file: every mistake refused with where it is, and an
arm's model that cannot be loaded degrades to the champion and says so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from serving.decision.engine import DecisionEngine
from serving.decision.placements import (
    SHIPPED_PLACEMENTS_FILE,
    PlacementsConfigError,
    load_placements,
)
from serving.decision.schemas import PersonalizeRequest
from serving.wiring import build_services
from tests.support.flow import CLOCK_START, Flow

SYMBOLS = DecisionEngine.symbols_for(None)


def _write(tmp_path: Path, experiments: list[dict], **banner) -> Path:
    document = yaml.safe_load(SHIPPED_PLACEMENTS_FILE.read_text())
    document["experiments"] = experiments
    document["placements"]["homepage_banner"] |= banner
    path = tmp_path / "placements.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _experiment(key: str = "e", **fields) -> dict:
    return {
        "key": key,
        "placement": "homepage_banner",
        "status": "running",
        "arms": [{"key": "a"}, {"key": "b"}],
    } | fields


@pytest.mark.parametrize(
    ("experiments", "field", "message"),
    [
        ([_experiment(placement="sidebar")], "experiments[e].placement", "unknown placement"),
        (
            [_experiment(arms=[{"key": "a"}, {"key": "b", "policy": {"rules": "nope"}}])],
            "experiments[e].arms[b].policy.rules",
            "not a rule set",
        ),
        ([_experiment(), _experiment("f")], "experiments[f].namespace", "could share users"),
        (
            [
                _experiment(
                    arms=[{"key": "a"}, {"key": "b", "policy": {"random": True, "model": "v"}}]
                )
            ],
            "experiments[e].arms.1.policy",
            "random arm ignores",
        ),
        (
            [_experiment(arms=[{"key": "a", "stopped": True}, {"key": "b", "stopped": True}])],
            "experiments[e]",
            "every arm is stopped",
        ),
        ([_experiment(arms=[{"key": "a"}])], "experiments[e].arms", "at least 2"),
        (
            [_experiment(arms=[{"key": "a", "shadow": True}, {"key": "b"}])],
            "experiments[e]",
            "must serve, not be a shadow",
        ),
        (
            [_experiment(arms=[{"key": "a"}, {"key": "b", "shadow": True, "shadow_share": 0}])],
            "experiments[e].arms.1.shadow_share",
            "greater than 0",
        ),
    ],
)
def test_a_bad_experiment_is_refused_with_its_location(tmp_path, experiments, field, message):
    with pytest.raises(PlacementsConfigError) as refused:
        load_placements(_write(tmp_path, experiments), SYMBOLS)
    problems = [(p.field, p.message) for p in refused.value.problems]
    assert any(f == field and message in m for f, m in problems), problems


def test_an_exploration_floor_no_distribution_can_meet_is_refused(tmp_path):
    banner = {"exploration": {"epsilon": 0.1, "floor": 0.2}}  # 8 variants x 0.2 > 1
    with pytest.raises(PlacementsConfigError) as refused:
        load_placements(_write(tmp_path, [], **banner), SYMBOLS)
    (problem,) = refused.value.problems
    assert problem.placement == "homepage_banner"
    assert "exploration.floor 0.2 for 8 variants" in problem.message
    assert "at most 0.1250" in problem.message


def test_disjoint_namespace_ranges_keep_two_experiments_apart(tmp_path):
    experiments = [
        _experiment(namespace={"name": "home", "range": [0.0, 0.5]}),
        _experiment("f", namespace={"name": "home", "range": [0.5, 1.0]}),
    ]
    loaded = load_placements(_write(tmp_path, experiments), SYMBOLS)
    assert list(loaded.experiments) == ["e", "f"]


QUIET = [
    {
        "id": "no_deals",
        "priority": 1,
        "when": "true",
        "action": {"type": "suppress", "target": {"tags": ["deal"]}},
    }
]


def test_an_arm_runs_its_own_rule_set(tmp_path):
    experiments = [_experiment(arms=[{"key": "a"}, {"key": "b", "policy": {"rules": "quiet"}}])]
    loaded = load_placements(_write(tmp_path, experiments, rule_sets={"quiet": QUIET}), SYMBOLS)
    plan = loaded.experiments["e"]
    assert [rule.id for rule in plan.arm("b").rules] == ["no_deals"]
    assert [r.id for r in plan.arm("a").rules] == [r.id for r in loaded.rules["homepage_banner"]]


def _decided_in_arm_a(flow: Flow, tmp_path: Path, policy: dict, **banner) -> tuple:
    """User 3's decision in an experiment that puts almost everyone in arm `a`."""
    experiments = [
        _experiment(arms=[{"key": "a", "policy": policy}, {"key": "b", "weight": 0.0001}])
    ]
    settings = flow.settings(
        serving={"placements_file": _write(tmp_path, experiments, **banner)},
        decisions={"database_url": f"sqlite:///{tmp_path / 'decisions.db'}"},
    )
    services = build_services(settings)
    try:
        engine = services.engine
        request = PersonalizeRequest.model_validate(
            {
                "user_id": 3,
                "placement": "homepage_banner",
                "context": {
                    "device": "mobile",
                    "country": "DE",
                    "timestamp": (CLOCK_START - timedelta(hours=1)).isoformat(),
                },
            }
        )
        decision = engine.decide(request, engine.config.current)
        stats = engine.config.current.stats.report()
    finally:
        services.close()
    assert decision.experiment is not None and decision.experiment.arm == "a"
    return decision, engine, stats


def test_an_arm_with_a_rule_set_decides_by_it(flow: Flow, tmp_path):
    decision, _, stats = _decided_in_arm_a(
        flow, tmp_path, {"rules": "quiet"}, rule_sets={"quiet": QUIET}
    )
    assert [rule.id for rule in decision.rules_fired] == ["no_deals"]
    assert "deal" not in decision.variant.tags
    assert next(r for r in stats if r["rule_id"] == "no_deals")["fired"] == 1


def test_an_arm_whose_model_is_missing_serves_the_champion_and_says_so(flow: Flow, tmp_path):
    decision, engine, _ = _decided_in_arm_a(flow, tmp_path, {"model": "no-such-version"})
    assert "arm_model_unavailable:no-such-version" in decision.degraded
    assert decision.model_version == engine.model.version and decision.propensity is not None
