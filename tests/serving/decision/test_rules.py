"""Rules as compiled from configuration: each action, priority conflicts, time windows,
null inputs and evaluation errors. Pure code paths: no store, no model, no server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from serving.decision.engine import DecisionEngine
from serving.decision.placements import Placement, compile_placement_rules
from serving.decision.rules.evaluation import Verdict, evaluate
from serving.decision.rules.resolution import APPLIED, NO_TARGET, OVERRIDDEN, resolve
from serving.decision.rules.symbols import DecisionFacts
from serving.decision.scoring import RequestFacts, UserSignals, rank_candidates

SYMBOLS = DecisionEngine.symbols_for(None)
MOMENT = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # a Monday afternoon

VARIANTS = [
    {"id": "generic", "content": {}, "tags": ["generic"]},
    {"id": "electronics", "content": {}, "category": "electronics", "tags": ["deal"]},
    {"id": "fashion", "content": {}, "category": "fashion", "tags": ["new"]},
    {"id": "books", "content": {}, "category": "books", "tags": ["deal"]},
    {"id": "recovery", "content": {}, "tags": ["recovery"], "forced_only": True},
]


def _placement(rules: list[dict[str, Any]]) -> Placement:
    return Placement.model_validate(
        {
            "weights": {"behavioral": 1, "contextual": 0, "predictive": 0},
            "fallback_variant": "generic",
            "variants": VARIANTS,
            "rules": rules,
        }
    )


def _rule(rule_id: str, priority: int, action: dict, when: str = "true", **extra) -> dict:
    return {"id": rule_id, "priority": priority, "when": when, "action": action, **extra}


def _values(features: dict[str, Any] | None = None, moment: datetime = MOMENT) -> dict[str, Any]:
    facts = DecisionFacts(
        user_id=7,
        placement="test",
        device="mobile",
        country="DE",
        page="home",
        moment=moment,
        propensity=None,
        propensity_percentile=None,
    )
    return SYMBOLS.values(features or {}, facts)


def _decide(
    rules: list[dict[str, Any]],
    features: dict[str, Any] | None = None,
    moment: datetime = MOMENT,
    personalized: bool = True,
):
    """Rank a user who likes electronics (share 0.6), then apply the rules that fire."""
    placement = _placement(rules)
    compiled, problems = compile_placement_rules("test", placement, SYMBOLS)
    assert problems == []
    user = UserSignals(
        top_category="electronics", top_category_share=0.6, propensity_percentile=None
    )
    ranked = rank_candidates(placement, user, RequestFacts("mobile", moment.hour, "home"), {})
    values = _values(features, moment)
    context = SYMBOLS.context(values, set().union(*(rule.symbols for rule in compiled)))
    evaluations = [evaluate(rule, context, values, moment) for rule in compiled]
    fired = [e.rule for e in evaluations if e.verdict is Verdict.FIRED and not e.rule.is_trigger]
    return resolve(placement, ranked, fired, values, personalized), evaluations


def _effects(resolution) -> dict[str, str]:
    return {effect.rule.id: effect.outcome for effect in resolution.effects}


def test_without_rules_the_best_score_wins_and_forced_only_variants_wait():
    resolution, _ = _decide([])
    assert resolution.winner.variant.id == "electronics"
    assert resolution.winning_rule is None
    recovery = next(c for c in resolution.candidates if c.variant.id == "recovery")
    assert not recovery.eligible
    assert resolution.candidates[-1] is recovery


def test_force_serves_a_forced_only_variant():
    resolution, _ = _decide([_rule("recover", 10, {"type": "force", "variant": "recovery"})])
    assert resolution.winner.variant.id == "recovery"
    assert resolution.winner.forced and resolution.winner.eligible
    assert resolution.winning_rule == "recover"


def test_boost_multiplies_the_score_and_can_change_the_winner():
    baseline, _ = _decide([])
    fashion_base = next(c for c in baseline.candidates if c.variant.id == "fashion").score
    resolution, _ = _decide(
        [_rule("more_fashion", 10, {"type": "boost", "target": {"tags": ["new"]}, "factor": 5})]
    )
    fashion = next(c for c in resolution.candidates if c.variant.id == "fashion")
    assert fashion.factor == 5
    assert fashion.score == pytest.approx(fashion_base * 5)
    assert resolution.winner.variant.id == "fashion"
    assert resolution.winning_rule == "more_fashion"


def test_penalize_lowers_the_score_and_hands_the_win_to_the_next():
    resolution, _ = _decide(
        [
            _rule(
                "less_electronics",
                10,
                {"type": "penalize", "target": {"categories": ["electronics"]}, "factor": 0.1},
            )
        ]
    )
    assert resolution.winner.variant.id != "electronics"
    assert resolution.winning_rule == "less_electronics"


def test_suppress_removes_variants_but_never_the_fallback():
    resolution, _ = _decide(
        [
            _rule(
                "hide_all",
                10,
                {"type": "suppress", "target": {"tags": ["deal", "new", "generic"]}},
            )
        ]
    )
    suppressed = {c.variant.id for c in resolution.candidates if c.suppressed}
    assert suppressed == {"electronics", "fashion", "books"}
    assert resolution.winner.variant.id == "generic"
    assert resolution.winning_rule == "hide_all"


def test_matching_targets_the_category_a_feature_names():
    rule = _rule(
        "session_interest",
        10,
        {"type": "boost", "target": {"matching": "session_top_category"}, "factor": 5},
        when="session_top_category_views_30m > 3",
    )
    resolution, _ = _decide(
        [rule], {"session_top_category": "books", "session_top_category_views_30m": 4}
    )
    assert resolution.winner.variant.id == "books"
    assert _effects(resolution) == {"session_interest": APPLIED}
    quiet, evaluations = _decide(
        [rule], {"session_top_category": "books", "session_top_category_views_30m": 3}
    )
    assert evaluations[0].verdict is Verdict.NOT_MATCHED
    assert quiet.winner.variant.id == "electronics"


def test_the_higher_priority_rule_decides_a_variant_both_target():
    resolution, _ = _decide(
        [
            _rule("boost_low", 10, {"type": "boost", "target": {"tags": ["new"]}, "factor": 3}),
            _rule("hide_high", 20, {"type": "suppress", "target": {"variants": ["fashion"]}}),
        ]
    )
    fashion = next(c for c in resolution.candidates if c.variant.id == "fashion")
    assert fashion.suppressed and fashion.decided_by == "hide_high"
    assert _effects(resolution) == {"hide_high": APPLIED, "boost_low": OVERRIDDEN}
    assert resolution.effects[1].overridden_by == ["hide_high"]


def test_the_highest_force_wins_and_overrides_every_lower_content_rule():
    resolution, _ = _decide(
        [
            _rule("force_low", 10, {"type": "force", "variant": "books"}),
            _rule("force_high", 30, {"type": "force", "variant": "fashion"}),
            _rule("boost_mid", 20, {"type": "boost", "target": {"tags": ["deal"]}, "factor": 9}),
        ]
    )
    assert resolution.winner.variant.id == "fashion"
    assert resolution.winning_rule == "force_high"
    assert _effects(resolution) == {
        "force_high": APPLIED,
        "boost_mid": OVERRIDDEN,
        "force_low": OVERRIDDEN,
    }
    # What the overridden rules would have done is undone in the explanation too.
    books = next(c for c in resolution.candidates if c.variant.id == "books")
    assert (books.forced, books.factor, books.decided_by) == (False, 1.0, None)


def test_the_winning_rule_is_the_one_that_lifted_the_winner_not_one_that_helped_the_loser():
    resolution, _ = _decide(
        [
            _rule(
                "nudge_top",
                100,
                {"type": "boost", "target": {"variants": ["electronics"]}, "factor": 1.1},
            ),
            _rule("push_fashion", 50, {"type": "boost", "target": {"tags": ["new"]}, "factor": 20}),
        ]
    )
    assert resolution.winner.variant.id == "fashion"
    assert resolution.winning_rule == "push_fashion"


def test_a_penalty_the_winner_survives_is_not_the_winning_rule():
    resolution, _ = _decide(
        [
            _rule(
                "trim_top",
                10,
                {"type": "penalize", "target": {"variants": ["electronics"]}, "factor": 0.99},
            ),
        ]
    )
    assert resolution.winner.variant.id == "electronics"
    assert resolution.winning_rule is None


def test_a_higher_suppress_beats_a_lower_force():
    resolution, _ = _decide(
        [
            _rule("force_books", 10, {"type": "force", "variant": "books"}),
            _rule("no_books", 20, {"type": "suppress", "target": {"variants": ["books"]}}),
        ]
    )
    assert resolution.winner.variant.id == "electronics"
    assert _effects(resolution) == {"no_books": APPLIED, "force_books": OVERRIDDEN}


def test_equal_priorities_keep_the_file_order():
    resolution, _ = _decide(
        [
            _rule("first", 10, {"type": "force", "variant": "books"}),
            _rule("second", 10, {"type": "force", "variant": "fashion"}),
        ]
    )
    assert resolution.winner.variant.id == "books"


def test_without_personal_features_the_fallback_serves_unless_forced():
    unforced, _ = _decide(
        [_rule("boost", 10, {"type": "boost", "target": {"tags": ["deal"]}, "factor": 9})],
        personalized=False,
    )
    assert unforced.winner.variant.id == "generic"
    forced, _ = _decide(
        [
            _rule(
                "mobile_books", 10, {"type": "force", "variant": "books"}, when="device == 'mobile'"
            )
        ],
        personalized=False,
    )
    assert forced.winner.variant.id == "books"


def test_a_rule_without_targets_reports_no_target():
    """A tag no variant has is refused at load; a `matching` value can still miss."""
    boost = {"type": "boost", "target": {"matching": "last_category"}, "factor": 2}
    ghost = _rule("ghost", 10, boost)
    resolution, _ = _decide([ghost], {"last_category": "garden"})
    assert _effects(resolution) == {"ghost": NO_TARGET}


@pytest.mark.parametrize(
    ("active", "moment", "verdict"),
    [
        ({"hours": [9, 17]}, MOMENT, Verdict.FIRED),
        ({"hours": [18, 23]}, MOMENT, Verdict.INACTIVE),
        ({"hours": [22, 6]}, MOMENT.replace(hour=2), Verdict.FIRED),
        ({"weekdays": ["sat", "sun"]}, MOMENT, Verdict.INACTIVE),
        ({"weekdays": ["mon"]}, MOMENT, Verdict.FIRED),
        (
            {"start": "2026-11-27T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
            MOMENT,
            Verdict.INACTIVE,
        ),
        (
            {"start": "2026-11-27T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
            datetime(2026, 11, 28, tzinfo=UTC),
            Verdict.FIRED,
        ),
        ({"end": "2026-11-23T15:30:00Z"}, MOMENT, Verdict.INACTIVE),  # end is exclusive
    ],
)
def test_active_windows(active, moment, verdict):
    rule = _rule("windowed", 10, {"type": "force", "variant": "books"}, active=active)
    resolution, evaluations = _decide([rule], moment=moment)
    assert evaluations[0].verdict is verdict
    assert (resolution.winner.variant.id == "books") is (verdict is Verdict.FIRED)


def test_a_disabled_rule_never_fires():
    rule = _rule("off", 10, {"type": "force", "variant": "books"}, enabled=False)
    _, evaluations = _decide([rule])
    assert evaluations[0].verdict is Verdict.INACTIVE


def test_null_inputs_do_not_fire_and_are_not_errors():
    rule = _rule("big_cart", 10, {"type": "force", "variant": "books"}, when="cart_value > 100")
    _, evaluations = _decide([rule], {"cart_value": None})
    assert evaluations[0].verdict is Verdict.MISSING_INPUTS
    _, evaluations = _decide([rule], {"cart_value": 150.0})
    assert evaluations[0].verdict is Verdict.FIRED


def test_a_negation_does_not_fire_on_a_null_input_unless_it_asks_for_null():
    not_books = _rule(
        "not_books", 10, {"type": "force", "variant": "books"}, when="top_category_30d != 'books'"
    )
    asks = _rule(
        "no_history",
        10,
        {"type": "force", "variant": "books"},
        when="top_category_30d == null || top_category_30d != 'books'",
    )
    _, evaluations = _decide([not_books, asks], {"top_category_30d": None})
    assert [e.verdict for e in evaluations] == [Verdict.MISSING_INPUTS, Verdict.FIRED]
    _, evaluations = _decide([not_books, asks], {"top_category_30d": "toys"})
    assert [e.verdict for e in evaluations] == [Verdict.FIRED, Verdict.FIRED]


def test_a_failing_condition_is_an_error_with_its_cause():
    rule = _rule(
        "divides_by_zero",
        10,
        {"type": "force", "variant": "books"},
        when="hour / (hour - hour) > 1",
    )
    resolution, evaluations = _decide([rule])
    assert evaluations[0].verdict is Verdict.ERROR
    assert "division by zero" in evaluations[0].error
    assert resolution.winner.variant.id == "electronics"


def test_time_arithmetic_on_epoch_features():
    rule = _rule(
        "cart_left",
        10,
        {"type": "force", "variant": "recovery"},
        when="now - last_unpurchased_cart_at >= duration('10m') && cart_value > 0.0",
    )
    eleven_minutes_ago = int(MOMENT.timestamp()) - 11 * 60
    five_minutes_ago = int(MOMENT.timestamp()) - 5 * 60
    _, fired = _decide(
        [rule], {"last_unpurchased_cart_epoch_s": eleven_minutes_ago, "cart_value": 9.0}
    )
    _, recent = _decide(
        [rule], {"last_unpurchased_cart_epoch_s": five_minutes_ago, "cart_value": 9.0}
    )
    assert fired[0].verdict is Verdict.FIRED
    assert recent[0].verdict is Verdict.NOT_MATCHED


def test_membership_and_boolean_logic():
    rule = _rule(
        "logic",
        10,
        {"type": "force", "variant": "books"},
        when="device in ['mobile', 'tablet'] && !(country == 'FR') || weekday == 'sun'",
    )
    _, evaluations = _decide([rule])
    assert evaluations[0].verdict is Verdict.FIRED
