"""Exploration: the distribution a placement's `exploration` gives, the rules it keeps
(forced serves for sure, suppressed is never explored), and draws that match it: over
100,000 draws of the engine's `draw`, and over the real engine's own decisions for a
fixed user (fewer: each reads the store and scores the model)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest
from scipy.stats import chisquare

from feature_repo.feature_services import personalization_v1
from serving.decision.exploration import Exploration, draw, explored, uniform
from serving.decision.placements import Placement, compile_placement_rules
from serving.decision.rules.resolution import Resolution, resolve
from serving.decision.rules.symbols import SymbolTable
from serving.decision.scoring import ScoredCandidate
from tests.support.engines import banner_placements, banner_request, in_process
from tests.support.flow import CLOCK_START, Flow

PLACEMENT = Placement.model_validate(
    {
        "weights": {"behavioral": 0.5, "contextual": 0.2, "predictive": 0.3},
        "fallback_variant": "a",
        "variants": [
            {"id": "a", "content": {}},
            {"id": "b", "content": {}, "tags": ["deal"]},
            {"id": "c", "content": {}},
            {"id": "d", "content": {}, "forced_only": True},
        ],
    }
)
SCORES = {"a": 0.4, "b": 0.7, "c": 0.5, "d": 0.9}
SYMBOLS = SymbolTable.for_service(personalization_v1)
ENGINE_DECISIONS = 1500


def _resolution(*rules: dict) -> Resolution:
    ranked = sorted(
        (ScoredCandidate(PLACEMENT.variant(v), {}, score) for v, score in SCORES.items()),
        key=lambda candidate: -candidate.score,
    )
    ruled = Placement.model_validate(PLACEMENT.model_dump() | {"rules": rules})
    compiled, problems = compile_placement_rules("p", ruled, SYMBOLS)
    assert not problems
    return resolve(ruled, ranked, list(compiled), {}, personalized=True)


def test_epsilon_spreads_its_share_evenly_and_the_best_keeps_the_rest():
    distribution = explored(_resolution(), Exploration(epsilon=0.3), personalized=True)
    # d is forced_only: never explored. Three eligible: 0.1 each, b the best.
    assert distribution == pytest.approx({"a": 0.1, "c": 0.1, "b": 0.8})
    assert sum(distribution.values()) == pytest.approx(1.0)


def test_the_floor_lifts_a_small_epsilon_share():
    distribution = explored(_resolution(), Exploration(epsilon=0.03, floor=0.05), True)
    assert distribution == pytest.approx({"a": 0.05, "c": 0.05, "b": 0.9})


def test_a_suppressed_variant_is_never_explored_and_a_forced_one_serves_for_sure():
    suppress = {
        "id": "no_c",
        "priority": 1,
        "when": "true",
        "action": {"type": "suppress", "target": {"variants": ["c"]}},
    }
    distribution = explored(_resolution(suppress), Exploration(epsilon=0.5), True)
    assert set(distribution) == {"a", "b"}
    force = {
        "id": "force_d",
        "priority": 1,
        "when": "true",
        "action": {"type": "force", "variant": "d"},
    }
    assert explored(_resolution(force), Exploration(epsilon=0.5), True) == {"d": 1.0}


def test_without_personal_features_or_exploration_the_choice_is_certain():
    assert explored(_resolution(), Exploration(epsilon=0.5), personalized=False) == {"b": 1.0}
    assert explored(_resolution(), None, personalized=True) == {"b": 1.0}
    assert uniform(_resolution()) == pytest.approx({"b": 1 / 3, "c": 1 / 3, "a": 1 / 3})


def test_draws_follow_the_distribution_over_100000_decisions():
    """The probability logged is the frequency served (chi-square goodness of fit)."""
    distribution = explored(_resolution(), Exploration(epsilon=0.2, floor=0.01), True)
    rng = random.Random(11)
    draws = 100_000
    counts = {variant: 0 for variant in distribution}
    for _ in range(draws):
        counts[draw(distribution, rng)] += 1
    expected = [distribution[v] * draws for v in counts]
    assert chisquare(list(counts.values()), expected).pvalue > 0.001
    for variant, count in counts.items():
        assert count / draws == pytest.approx(distribution[variant], abs=0.005)


def test_a_floor_no_distribution_can_meet_is_refused_at_load():
    with pytest.raises(ValueError, match=r"exploration\.floor"):
        Placement.model_validate(
            PLACEMENT.model_dump() | {"exploration": {"epsilon": 0.1, "floor": 0.3}}
        )


def test_the_engine_serves_each_variant_as_often_as_it_logs(flow: Flow, tmp_path):
    """One user at one moment, decided again and again by the real engine: the same
    logged distribution every time, and served variants that follow it."""
    arms = [{"key": "champion"}, {"key": "other", "stopped": True}]
    exploration = {"epsilon": 0.3, "floor": 0.02}
    placements = banner_placements(tmp_path / "p.yaml", arms, exploration=exploration)
    moment = CLOCK_START - timedelta(hours=1)
    with in_process(flow, placements, tmp_path / "decisions.db", seed=3) as services:
        engine = services.engine
        snapshot = engine.config.current
        bodies = [
            engine.decide(banner_request(552, "desktop", moment), snapshot)
            for _ in range(ENGINE_DECISIONS)
        ]
    logged = {c.variant_id: c.probability for c in bodies[0].candidates if c.probability > 0}
    assert len(logged) > 2 and sum(logged.values()) == pytest.approx(1.0)
    for body in bodies:
        assert {c.variant_id: c.probability for c in body.candidates if c.probability} == logged
        assert body.action_probability == logged[body.variant.id]
    served = Counter(body.variant.id for body in bodies)
    assert set(served) <= set(logged)
    observed = [served[variant] for variant in logged]
    expected = [logged[variant] * len(bodies) for variant in logged]
    assert chisquare(observed, expected).pvalue > 0.001
