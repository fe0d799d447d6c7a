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
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from serving.decision.exploration import Exploration
from serving.decision.rules.config import ForceAction, RuleConfig, Strict, SuppressAction
from serving.decision.rules.evaluation import FILE_LEVEL, CompiledRule, ConfigProblem, compile_rule
from serving.decision.rules.symbols import SymbolTable
from serving.decision.time_windows import HourRange
from serving.decision.weights import Weights
from serving.experiments.config import Arm, Experiment
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


RULE_SWITCHES = ("on", "off")


class Placement(Strict):
    description: str = ""
    weights: Weights
    fallback_variant: str
    variants: tuple[Variant, ...] = Field(min_length=1)
    rules: tuple[RuleConfig, ...] = ()
    rule_sets: dict[str, tuple[RuleConfig, ...]] = Field(
        default_factory=dict,
        description="Alternative rule sets an experiment arm may use instead of `rules`.",
    )
    holdout: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="Share of users who always get the fallback variant and join no "
        "experiment: the baseline personalization is measured against.",
    )
    exploration: Exploration | None = Field(
        None,
        description="Serve another eligible variant now and then, with a logged "
        "probability, so other policies can be judged from the log.",
    )

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
        for rules in (self.rules, *self.rule_sets.values()):
            rule_ids = [rule.id for rule in rules]
            repeated = sorted({rid for rid in rule_ids if rule_ids.count(rid) > 1})
            if repeated:
                raise ValueError(f"rule ids must be unique within a rule set; repeated: {repeated}")
        reserved = sorted(set(self.rule_sets) & set(RULE_SWITCHES))
        if reserved:
            raise ValueError(f"rule set names {reserved} are reserved (on, off)")
        if self.exploration is not None and self.exploration.floor * len(ids) > 1:
            raise ValueError(
                f"exploration.floor {self.exploration.floor} for {len(ids)} variants "
                f"exceeds 1 in all: lower it to at most {1 / len(ids):.4f}"
            )
        return self

    def variant(self, variant_id: str) -> Variant:
        return next(variant for variant in self.variants if variant.id == variant_id)


class PlacementsFile(Strict):
    version: str = Field(min_length=1)
    placements: dict[str, Placement] = Field(min_length=1)
    experiments: tuple[Experiment, ...] = ()


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
class ArmPlan:
    """An experiment arm ready to decide with: the placement as the arm sees it (its
    weights) and the rules it runs."""

    arm: Arm
    placement: Placement
    rules: tuple[CompiledRule, ...]
    model: str | None  # a version, NO_MODEL, or None for the served model


@dataclass(frozen=True)
class ExperimentPlan:
    experiment: Experiment
    arms: tuple[ArmPlan, ...]

    def arm(self, key: str) -> ArmPlan | None:
        return next((plan for plan in self.arms if plan.arm.key == key), None)


@dataclass(frozen=True)
class LoadedPlacements:
    config: PlacementsFile
    path: Path
    digest: str
    rules: dict[str, tuple[CompiledRule, ...]]  # per placement, in file order
    experiments: dict[str, ExperimentPlan]  # by key, in file order

    @property
    def version(self) -> str:
        return f"{self.config.version}+{self.digest}"

    def experiments_on(self, placement: str) -> list[ExperimentPlan]:
        """Asked on every decision: grouped once per loaded file."""
        return self._experiments_by_placement.get(placement, [])

    @cached_property
    def _experiments_by_placement(self) -> dict[str, list[ExperimentPlan]]:
        grouped: dict[str, list[ExperimentPlan]] = {}
        for plan in self.experiments.values():
            grouped.setdefault(plan.experiment.placement, []).append(plan)
        return grouped


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
    if len(loc) >= 2 and loc[0] == "experiments" and loc[1].isdigit():
        try:
            key = document["experiments"][int(loc[1])].get("key", f"#{loc[1]}")
        except (KeyError, IndexError, TypeError, AttributeError):
            key = f"#{loc[1]}"
        return ConfigProblem(
            FILE_LEVEL, None, ".".join([f"experiments[{key}]", *loc[2:]]), issue["msg"]
        )
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
    plans, found = compile_experiments(config, compiled, symbols)
    problems.extend(found)
    if problems:
        raise PlacementsConfigError(path, problems)
    return LoadedPlacements(config, path, hashlib.sha256(raw).hexdigest()[:12], compiled, plans)


def _experiment_problem(experiment: Experiment, field: str, message: str) -> ConfigProblem:
    return ConfigProblem(FILE_LEVEL, None, f"experiments[{experiment.key}].{field}", message)


def _arm_plan(
    experiment: Experiment,
    arm: Arm,
    placement: Placement,
    rules: tuple[CompiledRule, ...],
    symbols: SymbolTable,
) -> ArmPlan | list[ConfigProblem]:
    policy = arm.policy
    seen_as = (
        placement
        if policy.weights is None
        else placement.model_copy(update={"weights": policy.weights})
    )
    if policy.random or policy.rules == "off":
        return ArmPlan(arm, seen_as, (), policy.model)
    if policy.rules == "on":
        return ArmPlan(arm, seen_as, rules, policy.model)
    if policy.rules not in placement.rule_sets:
        known = [*RULE_SWITCHES, *placement.rule_sets]
        return [
            _experiment_problem(
                experiment,
                f"arms[{arm.key}].policy.rules",
                f"{policy.rules!r} is not a rule set of {experiment.placement}; known: {known}",
            )
        ]
    alternative = seen_as.model_copy(update={"rules": placement.rule_sets[policy.rules]})
    compiled, problems = compile_placement_rules(experiment.placement, alternative, symbols)
    return problems or ArmPlan(arm, alternative, compiled, policy.model)


def compile_experiments(
    config: PlacementsFile,
    rules: dict[str, tuple[CompiledRule, ...]],
    symbols: SymbolTable,
) -> tuple[dict[str, ExperimentPlan], list[ConfigProblem]]:
    """Each experiment's arms compiled, and every problem between experiments: unknown
    placements and rule sets, repeated keys, and experiments that could share a user."""
    problems: list[ConfigProblem] = []
    plans: dict[str, ExperimentPlan] = {}
    for experiment in config.experiments:
        if experiment.key in plans:
            problems.append(_experiment_problem(experiment, "key", "repeated experiment key"))
            continue
        placement = config.placements.get(experiment.placement)
        if placement is None:
            problems.append(
                _experiment_problem(
                    experiment,
                    "placement",
                    f"unknown placement {experiment.placement!r}; "
                    f"known: {sorted(config.placements)}",
                )
            )
            continue
        arms = [
            _arm_plan(experiment, arm, placement, rules[experiment.placement], symbols)
            for arm in experiment.arms
        ]
        found = [problem for arm in arms if isinstance(arm, list) for problem in arm]
        problems.extend(found)
        if not found:
            plans[experiment.key] = ExperimentPlan(
                experiment, tuple(arm for arm in arms if isinstance(arm, ArmPlan))
            )
    problems.extend(_shared_users(config.experiments))
    return plans, problems


def _disjoint_in_time(first: Experiment, second: Experiment) -> bool:
    return bool(
        (first.end and second.start and first.end <= second.start)
        or (second.end and first.start and second.end <= first.start)
    )


def _shared_users(experiments: tuple[Experiment, ...]) -> list[ConfigProblem]:
    """Two running experiments on one placement must sit in disjoint ranges of a
    namespace (or run at disjoint times), or a user could be in both and no result would
    say which arm moved them."""
    live = [e for e in experiments if e.status == "running"]
    problems = []
    for index, first in enumerate(live):
        for second in live[index + 1 :]:
            if first.placement != second.placement:
                continue
            apart = _disjoint_in_time(first, second) or (
                first.namespace is not None
                and second.namespace is not None
                and first.namespace.name == second.namespace.name
                and not first.namespace.overlaps(second.namespace)
            )
            if not apart:
                problems.append(
                    _experiment_problem(
                        second,
                        "namespace",
                        f"could share users with {first.key!r} on {first.placement}: give "
                        "both the same namespace name with disjoint ranges",
                    )
                )
    return problems
