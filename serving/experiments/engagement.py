"""Is a rule worth keeping? The engagement of the decisions it decided against the
placement's other decisions over the same days.

This is an observational comparison, not an experiment: a rule decides for users its
condition picks (an abandoned cart, a late hour), who may click or buy more or less
anyway. It flags rules to review, as the field's practice asks (rules that rarely
decide, or decide into worse engagement); an experiment with the rule off (`rules:
off` or another rule set on an arm) measures its effect.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pydantic import BaseModel, Field
from statsmodels.stats.proportion import confint_proportions_2indep

from serving.experiments.results import IntervalBody

RARELY = 0.005  # decides under 0.5% of its placement's decisions


@dataclass(frozen=True)
class Engagement:
    decisions: int
    impressions: int
    clicks: int
    conversions: int


class RuleEngagement(BaseModel):
    placement: str
    rule_id: str
    decided: int = Field(description="Decisions the rule decided in the window.")
    others: int = Field(description="The placement's other decisions (holdout excluded).")
    ctr: float | None = Field(description="Clicked / impressed, of the decisions it decided.")
    ctr_others: float | None
    conversion: float | None = Field(description="Converted / decisions it decided.")
    conversion_others: float | None
    conversion_difference: IntervalBody | None = Field(
        description="95% interval of conversion minus conversion_others (Newcombe's score "
        "interval, statsmodels)."
    )
    review: list[str] = Field(
        description="rarely_decides; lower_ctr or lower_conversion when the interval of "
        "the difference lies below zero."
    )


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _difference(
    count: int, total: int, count_others: int, total_others: int
) -> IntervalBody | None:
    if not total or not total_others:
        return None
    low, high = confint_proportions_2indep(
        count, total, count_others, total_others, method="newcomb", compare="diff"
    )
    return IntervalBody(low=float(low), high=float(high))


def rule_engagement(
    placement: str, rule_id: str, by_rule: dict[tuple[str, str | None], Engagement]
) -> RuleEngagement:
    """`by_rule` counts decisions per (placement, deciding rule), as the log holds them."""
    mine = by_rule.get((placement, rule_id), Engagement(0, 0, 0, 0))
    rest = [e for (p, rule), e in by_rule.items() if p == placement and rule != rule_id]
    others = Engagement(
        *(sum(getattr(e, f.name) for e in rest) for f in dataclasses.fields(Engagement))
    )
    conversion = _difference(mine.conversions, mine.decisions, others.conversions, others.decisions)
    clicks = _difference(mine.clicks, mine.impressions, others.clicks, others.impressions)
    review = []
    total = mine.decisions + others.decisions
    if total and mine.decisions / total < RARELY:
        review.append("rarely_decides")
    if clicks is not None and clicks.high < 0:
        review.append("lower_ctr")
    if conversion is not None and conversion.high < 0:
        review.append("lower_conversion")
    return RuleEngagement(
        placement=placement,
        rule_id=rule_id,
        decided=mine.decisions,
        others=others.decisions,
        ctr=_rate(mine.clicks, mine.impressions),
        ctr_others=_rate(others.clicks, others.impressions),
        conversion=_rate(mine.conversions, mine.decisions),
        conversion_others=_rate(others.conversions, others.decisions),
        conversion_difference=conversion,
        review=review,
    )
