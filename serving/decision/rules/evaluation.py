"""Compile rule conditions once at load; evaluate them per decision.

Conditions are CEL expressions (the Common Expression Language of Kubernetes and
Envoy), compiled by `common-expression-language` (a Rust interpreter) and never run as
Python. At load, every condition is checked for syntax, for names that are not symbols,
and for type errors by evaluating it once on a sample value of every symbol's type
(a branch that `&&` or `||` short-circuits is not reached, so this check is partial;
what it misses is reported at evaluation). A condition that reads a null symbol (a user
without a cart, a missing model score) simply does not fire, unless it mentions `null`
itself (`cart_value == null || cart_value < 100.0`): missing data is normal, and CEL
alone would make `top_category_30d != 'books'` true for a user with no history. Any
other evaluation failure is a rule error, reported in the decision's `degraded`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import cel

from serving.decision.rules.config import RuleConfig, TriggerAction
from serving.decision.rules.symbols import SymbolTable, SymbolType


class Verdict(StrEnum):
    FIRED = "fired"
    NOT_MATCHED = "not_matched"
    INACTIVE = "inactive"  # outside its active window, or disabled
    MISSING_INPUTS = "missing_inputs"
    ERROR = "error"


@dataclass(frozen=True)
class CompiledRule:
    config: RuleConfig
    condition: cel.Program
    symbols: frozenset[str]
    order: int  # position in the file: breaks priority ties
    handles_null: bool = False  # the condition tests for null itself
    static_targets: frozenset[str] = frozenset()  # variant ids selected whatever the values

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def is_trigger(self) -> bool:
        return isinstance(self.config.action, TriggerAction)


NULL_WORD = re.compile(r"\bnull\b")
FILE_LEVEL = "<file>"  # the placement of a problem with the file, not one placement


@dataclass(frozen=True)
class ConfigProblem:
    """A configuration problem found at load, located by placement, rule and field."""

    placement: str
    rule: str | None
    field: str
    message: str

    def __str__(self) -> str:
        parts = [] if self.placement == FILE_LEVEL else [f"placements.{self.placement}"]
        if self.rule is not None:
            parts.append(f"rules[{self.rule}]")
        if self.field:
            parts.append(self.field)
        return f"{'.'.join(parts)}: {self.message}" if parts else self.message


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def compile_rule(
    placement: str, config: RuleConfig, order: int, symbols: SymbolTable, sample: cel.Context
) -> CompiledRule | ConfigProblem:
    """`sample` is `symbols.sample_context()`, built once per load."""

    def problem(message: str, field: str = "when") -> ConfigProblem:
        return ConfigProblem(placement, config.id, field, message)

    try:
        condition = cel.compile(config.when)
    except ValueError as error:
        return problem(f"{_first_line(error)} in {config.when!r}")
    referenced = frozenset(condition.variables())
    unknown = sorted(referenced - set(symbols.types))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(symbols.types), n=3)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        return problem(
            f"unknown symbol {unknown[0]!r}; {hint}GET /v1/admin/rules/symbols "
            "lists every feature and request field"
        )
    target = getattr(config.action, "target", None)
    if target is not None and target.matching is not None:
        if symbols.types.get(target.matching) is not SymbolType.STRING:
            return problem(
                f"{target.matching!r} is not a text symbol (e.g. session_top_category)",
                "action.target.matching",
            )
        referenced |= {target.matching}
    try:
        result = condition.execute(sample)
    except ZeroDivisionError:
        result = True  # the sample's values, not the types, divided by zero
    except Exception as error:
        return problem(f"type error: {_first_line(error)} in {config.when!r}")
    if not isinstance(result, bool):
        return problem(f"must be true or false, but gives a {type(result).__name__}")
    return CompiledRule(
        config, condition, referenced, order, handles_null=bool(NULL_WORD.search(config.when))
    )


@dataclass(frozen=True)
class Evaluation:
    rule: CompiledRule
    verdict: Verdict
    error: str | None = None


def evaluate(
    rule: CompiledRule, context: cel.Context, values: dict[str, Any], moment: datetime
) -> Evaluation:
    """`context` binds (at least) the rule's symbols; `values` are the same as Python."""
    config = rule.config
    if not config.enabled or (config.active is not None and not config.active.contains(moment)):
        return Evaluation(rule, Verdict.INACTIVE)
    if not rule.handles_null and any(values.get(name) is None for name in rule.symbols):
        return Evaluation(rule, Verdict.MISSING_INPUTS)
    try:
        matched = rule.condition.execute(context)
    except Exception as error:  # CEL raises TypeError, RuntimeError, ZeroDivisionError...
        if any(values.get(name) is None for name in rule.symbols):
            return Evaluation(rule, Verdict.MISSING_INPUTS)
        return Evaluation(rule, Verdict.ERROR, f"{type(error).__name__}: {_first_line(error)}")
    if not isinstance(matched, bool):
        return Evaluation(rule, Verdict.ERROR, f"gave a {type(matched).__name__}, not a bool")
    return Evaluation(rule, Verdict.FIRED if matched else Verdict.NOT_MATCHED)
