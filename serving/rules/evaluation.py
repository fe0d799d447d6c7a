"""Compile rule conditions once at load; evaluate them per decision.

Conditions use `rule-engine` (a typed expression language, never Python `eval`).
A condition that fails only because a symbol it reads is null (a user without a cart,
a missing model score) simply does not fire: missing data is normal, and rule authors
who care can test `cart_value == null` explicitly. Any other evaluation failure is a
rule error, reported in the decision's `degraded` so it is seen and fixed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import rule_engine

from serving.rules.config import RuleConfig, TriggerAction
from serving.rules.symbols import SymbolTable


class Verdict(StrEnum):
    FIRED = "fired"
    NOT_MATCHED = "not_matched"
    INACTIVE = "inactive"  # outside its active window, or disabled
    MISSING_INPUTS = "missing_inputs"
    ERROR = "error"


@dataclass(frozen=True)
class CompiledRule:
    config: RuleConfig
    condition: rule_engine.Rule
    symbols: frozenset[str]
    order: int  # position in the file: breaks priority ties

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def is_trigger(self) -> bool:
        return isinstance(self.config.action, TriggerAction)


@dataclass(frozen=True)
class ConfigProblem:
    """A configuration problem found at load, located by placement, rule and field."""

    placement: str
    rule: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"placements.{self.placement}"
        if self.rule is not None:
            where += f".rules[{self.rule}]"
        return f"{where}.{self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def compile_rule(
    placement: str, config: RuleConfig, order: int, symbols: SymbolTable
) -> CompiledRule | ConfigProblem:
    context = symbols.context()
    try:
        condition = rule_engine.Rule(config.when, context=context)
    except rule_engine.errors.SymbolResolutionError as error:
        close = difflib.get_close_matches(error.symbol_name, list(symbols.types), n=3)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        return ConfigProblem(
            placement,
            config.id,
            "when",
            f"unknown symbol {error.symbol_name!r}; {hint}GET /v1/admin/rules/symbols "
            "lists every feature and request field",
        )
    except rule_engine.errors.EngineError as error:
        return ConfigProblem(placement, config.id, "when", f"{error.message} in {config.when!r}")
    referenced = frozenset(context.symbols)
    target = getattr(config.action, "target", None)
    if target is not None and target.matching is not None:
        if symbols.types.get(target.matching) is not rule_engine.DataType.STRING:
            return ConfigProblem(
                placement,
                config.id,
                "action.target.matching",
                f"{target.matching!r} is not a text symbol (e.g. session_top_category)",
            )
        referenced |= {target.matching}
    return CompiledRule(config, condition, referenced, order)


@dataclass(frozen=True)
class Evaluation:
    rule: CompiledRule
    verdict: Verdict
    error: str | None = None


def evaluate(rule: CompiledRule, values: dict[str, Any], moment: datetime) -> Evaluation:
    config = rule.config
    if not config.enabled or (config.active is not None and not config.active.contains(moment)):
        return Evaluation(rule, Verdict.INACTIVE)
    try:
        matched = rule.condition.matches(values)
    except (rule_engine.errors.EngineError, ArithmeticError) as error:
        if any(values.get(name) is None for name in rule.symbols):
            return Evaluation(rule, Verdict.MISSING_INPUTS)
        message = getattr(error, "message", None) or str(error)
        return Evaluation(rule, Verdict.ERROR, f"{type(error).__name__}: {message}")
    return Evaluation(rule, Verdict.FIRED if matched else Verdict.NOT_MATCHED)
