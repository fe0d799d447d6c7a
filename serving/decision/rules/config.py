"""What a rule is, as written in the placements file.

A rule is a condition over the decision's symbols (online features, request context,
model score), an action, a priority and an optional active window. The schema is
strict (unknown keys are errors) so a typo in a marketer's file is caught at load,
not discovered as a rule that silently never fires.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    JsonValue,
    model_validator,
)

from serving.decision.time_windows import HourRange, hour_in_range
from tailor.core.durations import parse_duration

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActiveWindow(Strict):
    """When a rule may fire, in UTC; every given criterion must hold."""

    start: AwareDatetime | None = Field(None, description="Inclusive, e.g. 2026-11-27T00:00:00Z.")
    end: AwareDatetime | None = Field(None, description="Exclusive.")
    hours: HourRange | None = Field(None, description="[start, end) UTC hours, may wrap.")
    weekdays: tuple[Weekday, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> ActiveWindow:
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        return self

    def contains(self, moment: datetime) -> bool:
        if self.start is not None and moment < self.start:
            return False
        if self.end is not None and moment >= self.end:
            return False
        if self.hours is not None and not hour_in_range(self.hours, moment.hour):
            return False
        return not self.weekdays or WEEKDAYS[moment.weekday()] in self.weekdays


class Target(Strict):
    """Which variants an action touches: any variant matching any criterion."""

    variants: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    matching: str | None = Field(
        None,
        description="A text symbol, e.g. session_top_category: variants whose category "
        "or one of whose tags equals its value at decision time.",
    )

    @model_validator(mode="after")
    def _something_selected(self) -> Target:
        if not (self.variants or self.tags or self.categories or self.matching):
            raise ValueError("name at least one of variants, tags, categories or matching")
        return self

    def selects_statically(
        self, variant_id: str, category: str | None, tags: tuple[str, ...]
    ) -> bool:
        """Selection known at load; `matching` depends on the decision's values."""
        return (
            variant_id in self.variants
            or category in self.categories
            or not set(self.tags).isdisjoint(tags)
        )


class ForceAction(Strict):
    type: Literal["force"]
    variant: str


class BoostAction(Strict):
    type: Literal["boost"]
    target: Target
    factor: float = Field(gt=1, le=100, description="Multiplies the score; above 1.")


class PenalizeAction(Strict):
    type: Literal["penalize"]
    target: Target
    factor: float = Field(gt=0, lt=1, description="Multiplies the score; between 0 and 1.")


class SuppressAction(Strict):
    type: Literal["suppress"]
    target: Target


Duration = Annotated[
    timedelta,
    BeforeValidator(lambda value: parse_duration(value) if isinstance(value, str) else value),
]


class TriggerAction(Strict):
    """An outbound notification, recorded once per user, rule and `once_per` window."""

    type: Literal["trigger"]
    notification: str = Field(min_length=1, max_length=100)
    once_per: Duration = Field(
        timedelta(hours=24), gt=timedelta(0), description="e.g. 30m, 24h, 7d"
    )
    webhook_url: HttpUrl | None = Field(
        None, description="Where to POST it; default decisions.webhook_url, else stored only."
    )
    # JSON values only: YAML reads `2026-11-27` as a date, which the outbox cannot store.
    payload: dict[str, JsonValue] = {}


ContentAction = ForceAction | BoostAction | PenalizeAction | SuppressAction
Action = Annotated[ContentAction | TriggerAction, Field(discriminator="type")]


class RuleConfig(Strict):
    id: str = Field(pattern=RULE_ID_PATTERN, max_length=100)
    priority: int = Field(ge=0, le=1_000_000, description="Higher wins a conflict.")
    when: str = Field(
        min_length=1,
        max_length=2000,
        description="A CEL expression, e.g. "
        '"minutes_since_cart_abandoned_now >= 10.0 && revenue_30d > 500.0".',
    )
    action: Action
    description: str = ""
    active: ActiveWindow | None = None
    enabled: bool = True

    def variant_ids_named(self) -> tuple[str, ...]:
        """Variant ids the rule names literally; the placement checks they exist."""
        if isinstance(self.action, ForceAction):
            return (self.action.variant,)
        if isinstance(self.action, TriggerAction):
            return ()
        return self.action.target.variants
