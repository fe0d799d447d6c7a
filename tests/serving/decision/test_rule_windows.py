"""Every active window of the shipped placements, evaluated at fixed instants inside and
outside it: the verdicts depend on the instant given, never on the day the suite runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from serving.decision.engine import DecisionEngine
from serving.decision.placements import SHIPPED_PLACEMENTS_FILE, load_placements
from serving.decision.rules.config import ActiveWindow
from serving.decision.rules.evaluation import CompiledRule, Verdict, evaluate
from serving.decision.rules.symbols import DecisionFacts, SymbolTable

SYMBOLS = DecisionEngine.symbols_for(None)
SHIPPED = load_placements(SHIPPED_PLACEMENTS_FILE, SYMBOLS)
WINDOWED = [
    (placement, rule)
    for placement, rules in SHIPPED.rules.items()
    for rule in rules
    if rule.config.active is not None
]
# A fixed week to search when a window has no start or end of its own.
REFERENCE = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def _candidates(window: ActiveWindow) -> list[datetime]:
    """Hourly instants around the window's edges (or over a reference fortnight)."""
    anchors = [moment for moment in (window.start, window.end) if moment] or [REFERENCE]
    return [
        anchor + timedelta(hours=offset)
        for anchor in anchors
        for offset in range(-14 * 24, 14 * 24)
    ]


def _verdict(placement: str, rule: CompiledRule, moment: datetime) -> Verdict:
    facts = DecisionFacts(
        user_id=7,
        placement=placement,
        device="mobile",
        country="DE",
        page="home",
        moment=moment,
        propensity=0.5,
        propensity_percentile=0.5,
    )
    values = SYMBOLS.values({}, facts)
    return evaluate(rule, SymbolTable.context(values, rule.symbols), values, moment).verdict


def test_the_shipped_file_has_windowed_rules_to_check():
    assert WINDOWED, "no shipped rule has an active window: nothing for these tests to guard"


@pytest.mark.parametrize(("placement", "rule"), WINDOWED, ids=[f"{p}.{r.id}" for p, r in WINDOWED])
def test_a_windowed_rule_is_inactive_outside_its_window_only(placement, rule):
    window = rule.config.active
    instants = _candidates(window)
    inside = [moment for moment in instants if window.contains(moment)]
    outside = [moment for moment in instants if not window.contains(moment)]
    assert inside and outside, "the search found no instant on one side of the window"
    for moment in (inside[0], inside[-1], outside[0], outside[-1]):
        expected_inactive = moment in outside
        assert (_verdict(placement, rule, moment) is Verdict.INACTIVE) == expected_inactive, moment


def test_black_friday_boosts_deals_only_within_its_dates():
    rule = next(
        rule for rule in SHIPPED.rules["homepage_banner"] if rule.id == "black_friday_deals"
    )
    assert (
        _verdict("homepage_banner", rule, datetime(2026, 11, 28, 12, tzinfo=UTC)) is Verdict.FIRED
    )
    assert (
        _verdict("homepage_banner", rule, datetime(2026, 11, 26, 23, tzinfo=UTC))
        is Verdict.INACTIVE
    )
    assert (
        _verdict("homepage_banner", rule, datetime(2026, 12, 1, 0, tzinfo=UTC)) is Verdict.INACTIVE
    )
