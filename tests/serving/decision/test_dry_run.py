"""Drafts for the dry run: a draft takes the place (and the verdict) of the rule it edits."""

from __future__ import annotations

import pytest

from serving.decision.dry_run import DraftRejected, placement_with_draft
from serving.decision.engine import DecisionEngine
from serving.decision.placements import SHIPPED_PLACEMENTS_FILE, load_placements

SYMBOLS = DecisionEngine.symbols_for(None)
BANNER = load_placements(SHIPPED_PLACEMENTS_FILE, SYMBOLS).config.placements["homepage_banner"]


def test_an_unchanged_draft_keeps_the_file_order():
    """File order breaks priority ties, so an unchanged draft must change nothing."""
    first = BANNER.rules[0].model_dump(mode="json")
    draft = placement_with_draft("homepage_banner", BANNER, first, SYMBOLS)
    assert [rule.id for rule in draft.compiled] == [rule.id for rule in BANNER.rules]


def test_an_edited_rule_is_the_draft_not_the_last_rule():
    edited = BANNER.rules[0].model_dump(mode="json") | {"when": "user_id == 7"}
    draft = placement_with_draft("homepage_banner", BANNER, edited, SYMBOLS)
    assert draft.rule_id == BANNER.rules[0].id != BANNER.rules[-1].id
    assert draft.compiled[0].config.when == "user_id == 7"


def test_a_new_rule_goes_last():
    new = {
        "id": "new_rule",
        "priority": 1,
        "when": "true",
        "action": {"type": "suppress", "target": {"tags": ["deal"]}},
    }
    draft = placement_with_draft("homepage_banner", BANNER, new, SYMBOLS)
    assert (draft.rule_id, draft.compiled[-1].id) == ("new_rule", "new_rule")


def test_an_invalid_draft_names_its_field():
    bad = BANNER.rules[0].model_dump(mode="json") | {"when": "revenu_30d > 1.0"}
    with pytest.raises(DraftRejected) as raised:
        placement_with_draft("homepage_banner", BANNER, bad, SYMBOLS)
    [problem] = raised.value.problems
    assert (problem.rule, problem.field) == (BANNER.rules[0].id, "when")
