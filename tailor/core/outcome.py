"""What a user did after a decision: the one declaration of an outcome.

`POST /v1/outcomes` validates its items as this model (so its constraints are the
API's), a purchase naming its decision becomes one, the simulator produces them, the
outcome log attributes and stores them, and results read them back.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tailor.core.events import DECISION_ID_LENGTH, NO_CONTROL_CHARACTERS, Instant

OutcomeType = Literal["impression", "click", "conversion"]
OUTCOME_TYPES: tuple[str, ...] = get_args(OutcomeType)
# Long enough for an event id (128) behind the `event:` prefix of a purchase's outcome.
OUTCOME_ID_LENGTH = 160


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome_id: str = Field(
        min_length=1,
        max_length=OUTCOME_ID_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description="Idempotency key: an outcome counts once however often it is sent.",
    )
    decision_id: str = Field(
        min_length=1, max_length=DECISION_ID_LENGTH, pattern=NO_CONTROL_CHARACTERS
    )
    type: OutcomeType
    value: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Revenue, for a conversion."
    )
    ts: Instant = Field(description="When it happened, ISO 8601 with a zone.")

    @model_validator(mode="after")
    def _value_of_a_conversion(self) -> Outcome:
        if self.value is not None and self.type != "conversion":
            raise ValueError("only a conversion carries a value")
        return self
