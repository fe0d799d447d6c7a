"""A decision as the decision log keeps it: the one declaration of a logged decision.

The API writes it, `GET /v1/decisions/{id}` returns it (FastAPI serialises the
dataclass), spill files hold it as JSON Lines, and analyses read it back; the
`tailor_decisions` table has one column per field (a test holds them together).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DecisionRecord:
    decision_id: str
    created_at: datetime  # aware
    user_id: int
    placement: str
    variant_id: str
    config_version: str | None
    model_version: str | None
    degraded: list[str]
    request: dict[str, Any]  # the request as received, JSON-ready
    decision: dict[str, Any]  # the full response, JSON-ready
    # Who the decision was for: an experiment's arm, the placement's holdout ("holdout",
    # no experiment), or neither (None, None). Defaults keep older spill files readable.
    experiment_key: str | None = None
    arm: str | None = None
    bucket: float | None = None  # the user's hash in [0, 1) for the experiment's seed
    # The probability with which the served variant was chosen (1.0 when deterministic),
    # so another policy can be judged off-policy from this log.
    action_probability: float = 1.0
    # The model's score and, for a sampled share of decisions, the inputs it scored
    # (feature name -> value, None when missing): drift monitoring compares them with
    # the model's reference profile. None when no model scored the decision.
    propensity: float | None = None
    features: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Fail in the caller, not later in the writer, where the row could only be set aside.
        if self.created_at.tzinfo is None:
            raise ValueError("DecisionRecord.created_at must be timezone-aware")

    def to_json_dict(self) -> dict[str, Any]:
        """The shape of a spill line: every field, the time as ISO 8601."""
        return {**vars(self), "created_at": self.created_at.isoformat()}

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> DecisionRecord:
        return cls(**{**data, "created_at": datetime.fromisoformat(data["created_at"])})
