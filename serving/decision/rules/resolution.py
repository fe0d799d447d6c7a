"""Apply the rules that fired to the scored candidates and pick the winner.

Conflict resolution, the contract the README documents:

1. Rules are taken highest priority first; equal priorities keep the file's order.
2. Per variant, the first (highest-priority) content rule that targets it decides its
   fate: forced, boosted or penalized (score times the factor), or suppressed. A
   lower-priority rule targeting the same variant is `overridden` for it.
3. If any variant is forced, the one forced by the highest-priority rule wins, and
   every lower-priority content rule is `overridden` by it (its factors are undone, so
   the candidates' scores show only what applied).
4. Otherwise the highest final score among the variants not suppressed wins.
   Variants marked `forced_only` compete only when forced.
5. The fallback variant cannot be suppressed: it is the answer that is always safe.
6. Without personal features (store down or the user opted out) the ranking is not
   trusted: the fallback wins unless a rule forces a variant.

The winning rule is the force that chose the variant; else, when rules changed the
winner compared to ranking without them, the highest-priority applied rule that lifted
the winner (a boost) or pulled down the variant that would have won (a penalty or a
suppression); else the boost that kept the winner on top, if any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from serving.decision.placements import Placement, Variant
from serving.decision.rules.config import (
    BoostAction,
    ForceAction,
    PenalizeAction,
    SuppressAction,
    Target,
)
from serving.decision.rules.evaluation import CompiledRule
from serving.decision.scoring import ScoredCandidate

APPLIED, OVERRIDDEN, NO_TARGET = "applied", "overridden", "no_target"


@dataclass
class RuledCandidate:
    scored: ScoredCandidate
    factor: float = 1.0
    suppressed: bool = False
    forced: bool = False
    decided_by: str | None = None

    @property
    def variant(self) -> Variant:
        return self.scored.variant

    @property
    def score(self) -> float:
        return self.scored.score * self.factor

    @property
    def eligible(self) -> bool:
        """May win on score: not suppressed, and not waiting for a force to serve."""
        return not self.suppressed and (self.forced or not self.variant.forced_only)


@dataclass
class RuleEffect:
    rule: CompiledRule
    outcome: str = NO_TARGET
    variants: list[str] = field(default_factory=list)
    overridden_by: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Resolution:
    candidates: list[RuledCandidate]  # winner first, then the eligible by score
    winner: RuledCandidate
    winning_rule: str | None
    effects: list[RuleEffect]


def _targets(rule: CompiledRule, placement: Placement, values: dict[str, Any]) -> list[str]:
    """Variant ids in file order: those selected at load, plus, for a `matching`
    target, those whose category or a tag equals the feature's value now."""
    target: Target | None = getattr(rule.config.action, "target", None)
    wanted = values.get(target.matching) if target is not None and target.matching else None
    if wanted is None:
        return [v.id for v in placement.variants if v.id in rule.static_targets]
    return [
        v.id
        for v in placement.variants
        if v.id in rule.static_targets or wanted == v.category or wanted in v.tags
    ]


def resolve(
    placement: Placement,
    ranked: list[ScoredCandidate],
    fired: list[CompiledRule],
    values: dict[str, Any],
    personalized: bool,
) -> Resolution:
    """`ranked` is best first without rules; `fired` holds content rules only."""
    candidates = {c.variant.id: RuledCandidate(c) for c in ranked}
    effects: list[RuleEffect] = []
    for rule in sorted(fired, key=lambda r: (-r.config.priority, r.order)):
        effect = RuleEffect(rule)
        effects.append(effect)
        for variant_id in _targets(rule, placement, values):
            candidate = candidates[variant_id]
            if candidate.decided_by is not None:
                effect.overridden_by.append(candidate.decided_by)
                continue
            action = rule.config.action
            if isinstance(action, SuppressAction) and variant_id == placement.fallback_variant:
                continue
            candidate.decided_by = rule.id
            candidate.forced = isinstance(action, ForceAction)
            candidate.suppressed = isinstance(action, SuppressAction)
            candidate.factor = getattr(action, "factor", 1.0)
            effect.variants.append(variant_id)
        if effect.variants:
            effect.outcome = APPLIED
        elif effect.overridden_by:
            effect.outcome = OVERRIDDEN

    forced = next(
        (
            e
            for e in effects
            if e.outcome == APPLIED and isinstance(e.rule.config.action, ForceAction)
        ),
        None,
    )
    fallback = candidates[placement.fallback_variant]
    if forced is not None:
        winner = candidates[forced.variants[0]]
        _override_below(forced, effects, candidates)
    elif personalized:
        eligible = [c for c in candidates.values() if c.eligible]
        winner = max(eligible, key=lambda c: c.score, default=fallback)
    else:
        winner = fallback

    unruled = fallback.variant.id
    if personalized:
        unruled = next((c.variant.id for c in ranked if not c.variant.forced_only), unruled)
    ordered = sorted(candidates.values(), key=lambda c: (c is not winner, not c.eligible, -c.score))
    return Resolution(ordered, winner, _winning_rule(forced, winner, unruled, effects), effects)


def _override_below(
    forced: RuleEffect, effects: list[RuleEffect], candidates: dict[str, RuledCandidate]
) -> None:
    """Once a force decides, lower-priority content rules changed nothing."""
    rank = effects.index(forced)
    for effect in effects[rank + 1 :]:
        if effect.outcome == APPLIED:
            effect.outcome = OVERRIDDEN
            effect.overridden_by.append(forced.rule.id)
            for variant_id in effect.variants:
                candidates[variant_id] = RuledCandidate(candidates[variant_id].scored)


def _winning_rule(
    forced: RuleEffect | None,
    winner: RuledCandidate,
    unruled: str,
    effects: list[RuleEffect],
) -> str | None:
    if forced is not None:
        return forced.rule.id
    if winner.variant.id != unruled:
        return next(
            (
                e.rule.id
                for e in effects
                if e.outcome == APPLIED and _helped(e, winner.variant.id, unruled)
            ),
            None,
        )
    return winner.decided_by if winner.factor > 1 else None


def _helped(effect: RuleEffect, winner: str, unruled: str) -> bool:
    action = effect.rule.config.action
    lifted = winner in effect.variants and isinstance(action, BoostAction)
    pulled_down = unruled in effect.variants and isinstance(action, PenalizeAction | SuppressAction)
    return lifted or pulled_down
