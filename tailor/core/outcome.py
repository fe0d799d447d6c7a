"""What a user did after a decision: the one declaration of an outcome.

The API takes outcomes (`POST /v1/outcomes`, or a purchase event naming its decision),
the simulator produces them, the outcome log attributes and stores them, and results
and training read them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

OutcomeType = Literal["impression", "click", "conversion"]
OUTCOME_TYPES: tuple[str, ...] = get_args(OutcomeType)


@dataclass(frozen=True)
class Outcome:
    outcome_id: str  # the sender's idempotency key: an outcome counts once
    decision_id: str
    type: OutcomeType
    value: float | None  # revenue of a conversion
    ts: datetime  # aware

    def __post_init__(self) -> None:
        if self.ts.tzinfo is None:
            raise ValueError("Outcome.ts must be timezone-aware")

    def to_json_dict(self) -> dict[str, Any]:
        return {**vars(self), "ts": self.ts.isoformat()}

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(**{**data, "ts": datetime.fromisoformat(data["ts"])})
