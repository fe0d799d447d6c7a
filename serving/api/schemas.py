"""Bodies of the HTTP API beyond the decision itself (`serving.decision.schemas`):
events, health, and the admin routes. They are also the OpenAPI docs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from serving.decision.rules.evaluation import ConfigProblem
from serving.decision.schemas import MAX_USER_ID, RequestContextBody
from tailor.core.events import NO_CONTROL_CHARACTERS


class ItemError(BaseModel):
    index: int = Field(description="Position of the item in the posted batch (0 for one item).")
    field: str
    message: str


class BatchAccepted(BaseModel):
    """Each item of a batch is validated on its own: the valid ones are accepted."""

    accepted: int
    rejected: int
    errors: list[ItemError]
    dropped: int = Field(
        0,
        description="Valid items not kept: events of users who opted out (counted in "
        "tailor_events_dropped_total). Outcomes are never dropped here.",
    )


class ErrorBody(BaseModel):
    """Every refusal but a validation error: what went wrong and what to do about it."""

    detail: str


class FieldError(BaseModel):
    type: str
    loc: list[str | int] = Field(description="Where the bad value is, e.g. body, placement.")
    msg: str
    input: Any = Field(None, description="A short excerpt of the value that was refused.")


class ValidationErrorBody(BaseModel):
    """FastAPI's 422 shape, as `serving.api.errors` answers it."""

    detail: list[FieldError]


class FeatureStoreHealth(BaseModel):
    reachable: bool
    error: str | None = None


class SpillBody(BaseModel):
    files: int
    bytes: int = Field(description="Size on disk; each line is one record.")


class HealthBody(BaseModel):
    status: str
    profile: str
    model_version: str | None
    feature_store: FeatureStoreHealth
    config_version: str
    last_materialization: str | None = Field(
        description="When the last successful materialization finished (UTC), if known."
    )
    last_materialization_error: str | None = Field(
        None, description="Why the run records could not be read in time, if they could not."
    )
    config_reload_rejected: bool = Field(
        description="The placements file on disk was refused; an older version serves."
    )
    model_reload_rejected: str | None = Field(
        None,
        description="The promoted model version this process refused (it does not load, or "
        "reads another feature service); model_version keeps serving.",
    )
    decision_database_failing: bool = Field(
        False,
        description="The decision log's last write failed: decisions go to the spill on "
        "disk every flush interval until the database answers.",
    )
    decision_log_backlog: int = Field(
        description="Decisions in memory, not yet in the database or the spill."
    )
    outcome_log_backlog: int = Field(
        description="Outcomes not yet attributed and stored (waiting for the database, or "
        "for their decision to reach it)."
    )
    spilled: dict[str, SpillBody] = Field(
        default_factory=dict,
        description="Per log, records on disk waiting for the database (replayed when it "
        "answers, then deleted).",
    )


class BaselineRequest(BaseModel):
    user_id: int = Field(ge=1)
    context: RequestContextBody


class ProblemBody(BaseModel):
    placement: str
    rule: str | None
    field: str
    message: str

    @classmethod
    def listing(cls, problems: list[ConfigProblem]) -> list[ProblemBody]:
        return [
            cls(placement=p.placement, rule=p.rule, field=p.field, message=p.message)
            for p in problems
        ]


class ReloadBody(BaseModel):
    outcome: str = Field(description="reloaded, unchanged or rejected")
    version: str = Field(description="The configuration version in force now.")
    problems: list[ProblemBody]


class ReloadRejected(BaseModel):
    detail: ReloadBody


class ModelReloadBody(BaseModel):
    outcome: Literal["swapped", "unchanged", "rejected"]
    version: str | None = Field(description="The model version serving now.")
    previous: str | None = Field(description="The version serving before this reload.")
    error: str | None = Field(None, description="Why the promoted version was refused.")


class ModelReloadRejected(BaseModel):
    detail: ModelReloadBody


class DraftProblems(BaseModel):
    problems: list[ProblemBody]


class DraftRefused(BaseModel):
    """The draft rule of a dry-run does not compile; the problems name its fields."""

    detail: DraftProblems


class ConfigBody(BaseModel):
    version: str
    loaded_at: datetime
    file: str
    placements: dict[str, dict[str, int]]
    last_rejected_at: datetime | None
    last_rejection: list[ProblemBody]


class DryRunUser(BaseModel):
    user_id: int = Field(ge=1, le=MAX_USER_ID)
    context: RequestContextBody


class DryRunRequest(BaseModel):
    placement: str
    rule: dict[str, Any] = Field(
        description="A draft rule as in the placements file; a rule with the same id is "
        "replaced by it for the dry-run."
    )
    users: list[DryRunUser] = Field(min_length=1, max_length=100)


class DryRunUserResult(BaseModel):
    user_id: int
    verdict: str = Field(
        description="fired, not_matched, inactive, missing_inputs or error for the draft."
    )
    error: str | None
    outcome: str | None = Field(
        description="What the draft did once fired: applied, overridden, no_target, would_trigger."
    )
    variant_before: str
    variant_after: str
    changed: bool
    winning_rule_before: str | None
    winning_rule_after: str | None
    degraded: list[str]


class DryRunBody(BaseModel):
    placement: str
    rule_id: str
    config_version: str
    fired: int
    changed: int
    users: list[DryRunUserResult]


class OptOutBody(BaseModel):
    reason: str | None = Field(None, max_length=200, pattern=NO_CONTROL_CHARACTERS)


class ErasureBody(BaseModel):
    """What `DELETE /v1/users/{id}` removed, per store; 503 when a store failed."""

    user_id: int
    opted_out: bool | None = Field(
        description="The user is on the opt-out list after the call (added by it unless "
        "keep_consent); null when the decision database could not say."
    )
    erased: dict[str, int] = Field(
        description="Records removed: session_states, queued_events (stream entries not "
        "yet processed), online_features (feature views that held the user), and the "
        "decision database's decisions, outcomes, shadow_decisions, assignments and "
        "trigger_outbox rows."
    )
    unavailable: dict[str, str] = Field(
        description="Stores that failed (session_state, online_store, decision_database) "
        "and why; nothing is claimed erased there. Retry: erasure is idempotent."
    )
