"""Signal scores and their combination: the arithmetic every explanation relies on."""

from __future__ import annotations

import pytest

from serving.decision.placements import ContextFit, Placement
from serving.decision.scoring import (
    NEUTRAL,
    RequestFacts,
    UserSignals,
    behavioral_score,
    combine,
    contextual_score,
    predictive_score,
    rank_candidates,
)

PLACEMENT = Placement.model_validate(
    {
        "weights": {"behavioral": 0.5, "contextual": 0.2, "predictive": 0.3},
        "fallback_variant": "generic",
        "variants": [
            {"id": "generic", "content": {}, "goal": "engagement"},
            {"id": "books", "content": {}, "category": "books"},
            {"id": "toys", "content": {}, "category": "toys", "context": {"devices": ["mobile"]}},
        ],
    }
)
FACTS = RequestFacts(device="mobile", hour=20, page="home")


def test_behavioral_score_prefers_the_users_top_category():
    fan = UserSignals(top_category="books", top_category_share=0.8, propensity_percentile=None)
    books, toys, generic = (PLACEMENT.variant(v) for v in ("books", "toys", "generic"))
    assert behavioral_score(books, fan, {}) == pytest.approx(0.9)
    assert behavioral_score(toys, fan, {}) == pytest.approx(0.1)
    assert behavioral_score(generic, fan, {}) == NEUTRAL


def test_new_users_get_the_popular_category():
    new = UserSignals(top_category=None, top_category_share=None, propensity_percentile=None)
    popularity = {"books": 0.1, "toys": 0.4}
    assert behavioral_score(PLACEMENT.variant("toys"), new, popularity) == 1.0
    assert behavioral_score(PLACEMENT.variant("books"), new, popularity) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("fit", "facts", "expected"),
    [
        ({}, FACTS, NEUTRAL),
        ({"devices": ["mobile"]}, FACTS, 1.0),
        ({"devices": ["desktop"], "pages": ["home"]}, FACTS, 0.5),
        ({"hours": [22, 6]}, RequestFacts("mobile", 23, None), 1.0),  # wraps midnight
        ({"hours": [22, 6]}, RequestFacts("mobile", 12, None), 0.0),
    ],
)
def test_contextual_score_is_the_share_of_criteria_met(fit, facts, expected):
    assert contextual_score(ContextFit.model_validate(fit), facts) == expected


def test_predictive_score_follows_the_variant_goal():
    assert predictive_score(PLACEMENT.variant("books"), 0.9) == 0.9
    assert predictive_score(PLACEMENT.variant("generic"), 0.9) == pytest.approx(0.1)
    assert predictive_score(PLACEMENT.variant("books"), None) is None


def test_a_missing_signal_gives_up_its_weight():
    weights = {"behavioral": 0.5, "contextual": 0.2, "predictive": 0.3}
    assert combine({"behavioral": 1.0, "contextual": 0.0, "predictive": None}, weights) == (
        pytest.approx(0.5 / 0.7)
    )


def test_weights_change_the_ranking_and_scores_add_up():
    fan = UserSignals(top_category="books", top_category_share=0.9, propensity_percentile=0.5)
    ranked = rank_candidates(PLACEMENT, fan, FACTS, {})
    assert ranked[0].variant.id == "books"
    for candidate in ranked:
        weights = PLACEMENT.weights.model_dump()
        assert candidate.score == pytest.approx(
            sum(weights[name] * value for name, value in candidate.components.items())
        )
    contextual_only = PLACEMENT.model_copy(
        update={
            "weights": PLACEMENT.weights.model_copy(
                update={"behavioral": 0.0, "contextual": 1.0, "predictive": 0.0}
            )
        }
    )
    assert rank_candidates(contextual_only, fan, FACTS, {})[0].variant.id == "toys"


def test_the_response_models_scores_replace_the_propensity_per_candidate():
    """Each candidate's own predictive value, not one per user turned by the goal; a
    variant the model did not score gives up the signal's weight."""
    fan = UserSignals(top_category="books", top_category_share=0.9, propensity_percentile=0.5)
    predictive = {"generic": 0.2, "toys": 0.95}
    ranked = {c.variant.id: c for c in rank_candidates(PLACEMENT, fan, FACTS, {}, predictive)}
    assert ranked["toys"].components["predictive"] == 0.95
    assert ranked["generic"].components["predictive"] == 0.2
    assert ranked["books"].components["predictive"] is None
    books = ranked["books"].components
    assert ranked["books"].score == pytest.approx((0.5 * books["behavioral"] + 0.2 * NEUTRAL) / 0.7)
    fallback = {c.variant.id: c for c in rank_candidates(PLACEMENT, fan, FACTS, {})}
    assert fallback["toys"].components["predictive"] == fallback["books"].components["predictive"]
