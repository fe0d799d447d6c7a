"""Experiments as configuration, in the placements file beside what they test.

An experiment splits the users of one placement between arms. Each arm is a policy:
the champion (the served model, rules and weights), or the champion with its model,
its rules or its weights replaced, or a uniform random choice among the eligible
variants. The first arm is the control every other arm is compared with. Assignment
follows GrowthBook (`assignment`): a hash of the experiment's seed and the user id, a
namespace that keeps experiments apart, a coverage share, and arm weights.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from serving.decision.rules.config import Strict
from serving.decision.weights import Weights

KEY_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"
NO_MODEL = "none"


class Namespace(Strict):
    """GrowthBook's namespace: a user falls at one point of [0, 1) per namespace name;
    experiments of one namespace with disjoint ranges never share a user."""

    name: str = Field(min_length=1, max_length=100)
    range: tuple[float, float] = Field(description="[start, end) within [0, 1].")

    @model_validator(mode="after")
    def _within_unit(self) -> Namespace:
        start, end = self.range
        if not 0 <= start < end <= 1:
            raise ValueError("range must be [start, end) with 0 <= start < end <= 1")
        return self

    def overlaps(self, other: Namespace) -> bool:
        return self.name == other.name and max(self.range[0], other.range[0]) < min(
            self.range[1], other.range[1]
        )


class ArmPolicy(Strict):
    """What an arm changes of the champion; an empty policy is the champion itself."""

    model: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description=f"A model version under models_dir, or {NO_MODEL!r} for no model; "
        "default the served one.",
    )
    rules: str = Field(
        "on", description="on, off, or the name of one of the placement's rule_sets."
    )
    weights: Weights | None = Field(None, description="Replace the placement's weights.")
    random: bool = Field(
        False, description="Choose uniformly among the eligible variants; no scores, no rules."
    )

    @model_validator(mode="after")
    def _random_alone(self) -> ArmPolicy:
        if self.random and (self.model or self.weights or self.rules != "on"):
            raise ValueError("a random arm ignores model, rules and weights: leave them out")
        return self


class Arm(Strict):
    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    weight: float = Field(1.0, gt=0, description="Share of new users, relative to the others.")
    stopped: bool = Field(
        False, description="Takes no new users; users already exposed keep it (sticky)."
    )
    policy: ArmPolicy = ArmPolicy()
    shadow: bool = Field(
        False,
        description="Never served: decided beside the served decision on the same "
        "features and logged, to be judged off-policy before it serves anyone.",
    )
    shadow_share: float = Field(
        1.0, gt=0, le=1, description="Share of the experiment's decisions a shadow arm sees."
    )


class Experiment(Strict):
    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    placement: str
    description: str = ""
    status: Literal["draft", "running", "stopped"]
    start: AwareDatetime | None = Field(None, description="Inclusive; none: when it runs.")
    end: AwareDatetime | None = Field(None, description="Exclusive.")
    namespace: Namespace | None = None
    coverage: float = Field(
        1.0, gt=0, le=1, description="Share of users (in the namespace) in the experiment."
    )
    seed: str | None = Field(None, max_length=200, description="Hash seed; default the key.")
    arms: tuple[Arm, ...] = Field(min_length=2, description="The first arm is the control.")

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        keys = [arm.key for arm in self.arms]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"arm keys must be unique; repeated: {repeated}")
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        if self.arms[0].shadow:
            raise ValueError("the first arm is the control: it must serve, not be a shadow")
        if all(arm.stopped for arm in self.live_arms) and self.status == "running":
            raise ValueError("every arm is stopped: stop the experiment instead")
        return self

    @property
    def live_arms(self) -> tuple[Arm, ...]:
        """The arms users are split between; shadow arms get nobody."""
        return tuple(arm for arm in self.arms if not arm.shadow)

    @property
    def shadow_arms(self) -> tuple[Arm, ...]:
        return tuple(arm for arm in self.arms if arm.shadow)

    @property
    def hash_seed(self) -> str:
        return self.seed or self.key

    @property
    def control(self) -> Arm:
        return self.arms[0]

    def runs_at(self, moment: datetime) -> bool:
        if self.status != "running":
            return False
        return (self.start is None or self.start <= moment) and (
            self.end is None or moment < self.end
        )
