"""Placements, their variants, signal weights and rules: declarative, validated at load.

The file is versioned twice over: an explicit `version` the authors bump, and a hash
of the content, so every decision can name the exact configuration it used. Loading
either yields a complete, compiled configuration or a list of every problem, each
located by placement, rule and field; never half a configuration.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from serving.decision.rules.config import ForceAction, RuleConfig, Strict, SuppressAction
from serving.decision.rules.evaluation import FILE_LEVEL, CompiledRule, ConfigProblem, compile_rule
from serving.decision.rules.symbols import SymbolTable
from serving.decision.time_windows import HourRange
from tailor.core.events import Device

SHIPPED_PLACEMENTS_FILE = Path(__file__).resolve().parents[1] / "placements.yaml"


def placements_path(configured: Path | None) -> Path:
    """The configured placements file, or the one Tailor ships (package data)."""
    return configured or SHIPPED_PLACEMENTS_FILE


class ContextFit(Strict):
    """Where a variant fits; an empty criterion is neutral."""

    devices: tuple[Device, ...] = ()
    hours: HourRange | None = Field(
        None, description="[start, end) in UTC hours; start > end wraps past midnight."
    )
    pages: tuple[str, ...] = ()


class Variant(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    content: dict[str, Any]
    category: str | None = None
    tags: tuple[str, ...] = ()
    goal: Literal["conversion", "engagement"] = Field(
        "conversion",
        description="conversion variants suit likely buyers; engagement ones the rest.",
    )
    context: ContextFit = ContextFit()
    forced_only: bool = Field(
        False, description="Served only when a `force` rule picks it, e.g. a recovery offer."
    )


class Weights(Strict):
    behavioral: float = Field(ge=0)
    contextual: float = Field(ge=0)
    predictive: float = Field(ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> Weights:
        if self.behavioral + self.contextual + self.predictive == 0:
            raise ValueError("at least one weight must be positive")
        return self


class Placement(Strict):
    description: str = ""
    weights: Weights
    fallback_variant: str
    variants: tuple[Variant, ...] = Field(min_length=1)
    rules: tuple[RuleConfig, ...] = ()

    @model_validator(mode="after")
    def _ids_consistent(self) -> Placement:
        ids = [variant.id for variant in self.variants]
        duplicates = sorted({vid for vid in ids if ids.count(vid) > 1})
        if duplicates:
            raise ValueError(f"variant ids must be unique; repeated: {duplicates}")
        if self.fallback_variant not in ids:
            raise ValueError(
                f"fallback_variant {self.fallback_variant!r} is not one of the variants {ids}"
            )
        if self.variant(self.fallback_variant).forced_only:
            raise ValueError("the fallback variant cannot be forced_only: it must always serve")
        rule_ids = [rule.id for rule in self.rules]
        repeated = sorted({rid for rid in rule_ids if rule_ids.count(rid) > 1})
        if repeated:
            raise ValueError(f"rule ids must be unique within a placement; repeated: {repeated}")
        return self

    def variant(self, variant_id: str) -> Variant:
        return next(variant for variant in self.variants if variant.id == variant_id)


class PlacementsFile(Strict):
    version: str = Field(min_length=1)
    placements: dict[str, Placement] = Field(min_length=1)


def _rule_reference_problems(name: str, placement: Placement) -> list[ConfigProblem]:
    """Rules must name variants that exist, and may not hide the safe fallback."""
    known = {variant.id for variant in placement.variants}
    problems = []
    for rule in placement.rules:
        field = "action.variant" if rule.action.type == "force" else "action.target.variants"
        unknown = sorted(set(rule.variant_ids_named()) - known)
        if unknown:
            problems.append(
                ConfigProblem(
                    name, rule.id, field, f"unknown variants {unknown}; known: {sorted(known)}"
                )
            )
        if (
            isinstance(rule.action, SuppressAction)
            and placement.fallback_variant in rule.action.target.variants
        ):
            problems.append(
                ConfigProblem(name, rule.id, field, "the fallback variant cannot be suppressed")
            )
        problems.extend(_unmatched_selectors(name, rule, placement))
    return problems


def _unmatched_selectors(name: str, rule: RuleConfig, placement: Placement) -> list[ConfigProblem]:
    """A tag or category no variant has is a typo that would silently never act."""
    target = getattr(rule.action, "target", None)
    if target is None:
        return []
    tags = {tag for variant in placement.variants for tag in variant.tags}
    categories = {variant.category for variant in placement.variants} - {None}
    return [
        ConfigProblem(
            name,
            rule.id,
            f"action.target.{field}",
            f"no variant has {field[:-1] if field == 'tags' else 'category'} {value!r}; "
            f"known: {sorted(known)}",
        )
        for field, values, known in (
            ("tags", target.tags, tags),
            ("categories", target.categories, categories),
        )
        for value in values
        if value not in known
    ]


class PlacementsConfigError(ValueError):
    """An invalid placements file; `problems` locates each by placement, rule and field."""

    def __init__(self, path: Path, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid placements file {path}:\n{listing}")


@dataclass(frozen=True)
class LoadedPlacements:
    config: PlacementsFile
    path: Path
    digest: str
    rules: dict[str, tuple[CompiledRule, ...]]  # per placement, in file order

    @property
    def version(self) -> str:
        return f"{self.config.version}+{self.digest}"


def compile_placement_rules(
    name: str, placement: Placement, symbols: SymbolTable
) -> tuple[tuple[CompiledRule, ...], list[ConfigProblem]]:
    """Every rule compiled, or the problems that stop it; also used for dry-run drafts."""
    problems = _rule_reference_problems(name, placement)
    sample = symbols.sample_context()
    results = [
        compile_rule(name, rule, order, symbols, sample)
        for order, rule in enumerate(placement.rules)
    ]
    problems.extend(result for result in results if isinstance(result, ConfigProblem))
    compiled = tuple(
        dataclasses.replace(result, static_targets=_static_targets(result.config, placement))
        for result in results
        if isinstance(result, CompiledRule)
    )
    return compiled, problems


def _static_targets(rule: RuleConfig, placement: Placement) -> frozenset[str]:
    """Resolved once at load so a decision does not re-match every variant per rule."""
    if isinstance(rule.action, ForceAction):
        return frozenset({rule.action.variant})
    target = getattr(rule.action, "target", None)
    if target is None:
        return frozenset()
    return frozenset(
        v.id for v in placement.variants if target.selects_statically(v.id, v.category, v.tags)
    )


def located_problem(issue: dict[str, Any], document: Any) -> ConfigProblem:
    """Pydantic's location, with rule positions replaced by the rule's id."""
    loc = [str(part) for part in issue["loc"]]
    if len(loc) < 2 or loc[0] != "placements":
        return ConfigProblem(FILE_LEVEL, None, ".".join(loc), issue["msg"])
    placement, rest, rule = loc[1], loc[2:], None
    if len(rest) >= 2 and rest[0] == "rules" and rest[1].isdigit():
        try:
            raw_rule = document["placements"][placement]["rules"][int(rest[1])]
            rule = str(raw_rule.get("id", f"#{rest[1]}"))
        except (KeyError, IndexError, TypeError, AttributeError):
            rule = f"#{rest[1]}"
        rest = rest[2:]
    # The discriminated action union adds the action type to the path: drop it.
    if (
        len(rest) >= 2
        and rest[0] == "action"
        and rest[1] in {"force", "boost", "penalize", "suppress", "trigger"}
    ):
        rest = [rest[0], *rest[2:]]
    return ConfigProblem(placement, rule, ".".join(rest), issue["msg"])


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a repeated key: plain YAML keeps the last one silently, so a
    placement pasted twice would replace the first without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_placements(path: Path, symbols: SymbolTable) -> LoadedPlacements:
    """Parse, validate and compile; raises PlacementsConfigError listing every problem."""

    def fail(message: str) -> PlacementsConfigError:
        return PlacementsConfigError(path, [ConfigProblem(FILE_LEVEL, None, "", message)])

    try:
        raw = path.read_bytes()
    except OSError as error:
        raise fail(f"cannot read: {error}") from error
    try:
        document = yaml.load(raw, Loader=_UniqueKeyLoader)  # a SafeLoader: no tags run code
    except yaml.YAMLError as error:
        raise fail(f"not valid YAML: {error}") from error
    try:
        config = PlacementsFile.model_validate(document)
    except ValidationError as error:
        problems = [located_problem(issue, document) for issue in error.errors()]
        raise PlacementsConfigError(path, problems) from error
    problems: list[ConfigProblem] = []
    compiled: dict[str, tuple[CompiledRule, ...]] = {}
    for name, placement in config.placements.items():
        compiled[name], found = compile_placement_rules(name, placement, symbols)
        problems.extend(found)
    if problems:
        raise PlacementsConfigError(path, problems)
    return LoadedPlacements(config, path, hashlib.sha256(raw).hexdigest()[:12], compiled)
