"""Dry-run of a draft rule: each user decided with and without it, nothing recorded.

The same gather and choose as a live decision, so a dry-run shows exactly what the
draft would do; no log row, no trigger, no stats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from serving.decision.engine import DecisionEngine
from serving.decision.placements import Placement, compile_placement_rules, located_problem
from serving.decision.rules.evaluation import CompiledRule, ConfigProblem, Verdict
from serving.decision.rules.symbols import SymbolTable
from serving.decision.schemas import PersonalizeRequest


class DraftRejected(ValueError):
    """The draft rule is invalid; `problems` locate each by placement, rule and field."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


@dataclass(frozen=True)
class Draft:
    """A placement with a draft rule in it, compiled, and the draft itself."""

    placement: Placement
    compiled: tuple[CompiledRule, ...]
    rule_id: str


def placement_with_draft(
    name: str, placement: Placement, raw_rule: dict[str, Any], symbols: SymbolTable
) -> Draft:
    """The placement with the draft in place of the rule of the same id (at its position:
    file order breaks priority ties), or added last, compiled; DraftRejected naming the
    field when the draft is invalid."""
    rules: list[Any] = [rule.model_dump() for rule in placement.rules]
    ids = [rule.id for rule in placement.rules]
    if raw_rule.get("id") in ids:
        rules[ids.index(raw_rule["id"])] = raw_rule
    else:
        rules.append(raw_rule)
    document = {"placements": {name: {**placement.model_dump(), "rules": rules}}}
    try:
        drafted = Placement.model_validate(document["placements"][name])
    except ValidationError as error:
        raise DraftRejected(
            [
                located_problem({**issue, "loc": ("placements", name, *issue["loc"])}, document)
                for issue in error.errors()
            ]
        ) from None
    compiled, problems = compile_placement_rules(name, drafted, symbols)
    if problems:
        raise DraftRejected(problems)
    return Draft(drafted, compiled, rule_id=raw_rule["id"])  # validated above


@dataclass(frozen=True)
class DraftOutcome:
    """What a draft rule would do for one request (POST /v1/admin/rules/dry-run)."""

    user_id: int
    verdict: str
    error: str | None
    outcome: str | None
    variant_before: str
    variant_after: str
    winning_rule_before: str | None
    winning_rule_after: str | None
    degraded: list[str]


def dry_run(
    engine: DecisionEngine,
    placement: Placement,
    current: tuple[CompiledRule, ...],
    with_draft: tuple[CompiledRule, ...],
    draft_id: str,
    requests: list[PersonalizeRequest],
) -> list[DraftOutcome]:
    """Each request decided with and without the draft; nothing is logged or sent."""
    snapshot = engine.config.current
    outcomes = []
    for request in requests:
        gathered = engine.gather(request, snapshot)
        before = engine.choose(request, placement, current, gathered)
        after = engine.choose(request, placement, with_draft, gathered)
        # No evaluations at all when consent is missing: then the draft is not evaluated.
        evaluation = next((e for e in after.evaluations if e.rule.id == draft_id), None)
        effect = next((e for e in after.resolution.effects if e.rule.id == draft_id), None)
        outcome = effect.outcome if effect else None
        if evaluation is not None and evaluation.verdict is Verdict.FIRED and effect is None:
            outcome = "would_trigger"
        outcomes.append(
            DraftOutcome(
                user_id=request.user_id,
                verdict=evaluation.verdict.value if evaluation else "not_evaluated",
                error=evaluation.error if evaluation else None,
                outcome=outcome,
                variant_before=before.resolution.winner.variant.id,
                variant_after=after.resolution.winner.variant.id,
                winning_rule_before=before.resolution.winning_rule,
                winning_rule_after=after.resolution.winning_rule,
                degraded=gathered.degraded,
            )
        )
    return outcomes
