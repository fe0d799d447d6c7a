"""What a decision is asked and what it answers: the request and the explained decision.

They are the bodies of `POST /v1/personalize` (and so its OpenAPI docs), and the
engine builds them directly: the decision is its own explanation, logged as returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tailor.core.events import NO_CONTROL_CHARACTERS, Device, Instant

MAX_USER_ID = 2**63 - 1


class RequestContextBody(BaseModel):
    """What the caller knows of the request; each field may be left out when unknown.
    An unknown device or country is named in `degraded` (`context_unknown:<field>`),
    features that depend on it are missing for the model, and the contextual signal
    scores only the criteria it can check (none: it gives up its weight)."""

    model_config = ConfigDict(extra="forbid")

    device: Device | None = None
    country: str | None = Field(
        None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. DE."
    )
    page: str | None = Field(None, max_length=200, description="Page type, e.g. home, product.")
    timestamp: Instant | None = Field(
        None, description="When the user is on the page (ISO 8601 with zone); default now."
    )


class PersonalizeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user_id": 42,
                    "placement": "homepage_banner",
                    "context": {"device": "mobile", "country": "DE", "page": "home"},
                }
            ]
        },
    )

    user_id: int = Field(ge=1, le=MAX_USER_ID, strict=True, description="Not a string or bool.")
    placement: str = Field(min_length=1, max_length=100, pattern=NO_CONTROL_CHARACTERS)
    context: RequestContextBody = Field(default_factory=RequestContextBody)
    personalization_consent: bool = Field(
        True,
        strict=True,
        description="False: serve the default content and use no behavioral data "
        "(as for users on the opt-out list).",
    )
    explain_candidates: bool = Field(
        False,
        strict=True,
        description="True: each candidate scored by the response model carries its "
        "feature contributions (`candidates[].response.explanation`).",
    )


class VariantBody(BaseModel):
    id: str
    content: dict[str, Any]
    category: str | None
    tags: list[str]
    goal: str = Field(description="conversion or engagement: what the variant is for.")


class Components(BaseModel):
    behavioral: float
    contextual: float | None = Field(
        description="None when the variant's context criteria need facts the request "
        "did not give (device unknown)."
    )
    predictive: float | None = Field(description="None when the model is unavailable.")


class ContributionBody(BaseModel):
    feature: str
    value: float | None
    contribution: float = Field(description="SHAP value in log-odds (LightGBM pred_contrib).")


class ModelExplanation(BaseModel):
    bias: float = Field(
        description="Expected log-odds; bias + all contributions = the model's score before "
        "calibration, in log-odds (the propensity is that score calibrated)."
    )
    top_contributions: list[ContributionBody]

    @classmethod
    def top_of(
        cls, contributions: Sequence[float], row: Sequence[float], names: Sequence[str], top: int
    ) -> ModelExplanation:
        """From one row's `pred_contrib` (bias last): the `top` largest by magnitude."""
        order = sorted(range(len(names)), key=lambda i: -abs(contributions[i]))
        return cls(
            bias=float(contributions[-1]),
            top_contributions=[
                ContributionBody(
                    feature=names[i],
                    value=None if math.isnan(row[i]) else float(row[i]),
                    contribution=float(contributions[i]),
                )
                for i in order[:top]
            ],
        )


class CandidateResponseBody(BaseModel):
    """The response model's view of one candidate."""

    click_probability: float
    conversion_probability: float
    target: str = Field(
        description="The probability the predictive component scales: conversion for a "
        "conversion variant, click for an engagement one."
    )
    explanation: ModelExplanation | None = Field(
        None, description="Contributions to the target's log-odds, when the request asked."
    )


class CandidateBody(BaseModel):
    variant_id: str
    score: float = Field(description="base_score x rule_factor.")
    base_score: float = Field(
        description="Weighted mean of the available components (weights of missing ones drop out)."
    )
    rule_factor: float = Field(description="Boost or penalty applied by a rule; 1 when none.")
    suppressed: bool
    forced: bool
    eligible: bool = Field(
        description="Could win on score: not suppressed, and not a forced_only variant unforced."
    )
    decided_by: str | None = Field(description="The rule that set this variant's fate, if any.")
    components: Components
    probability: float = Field(
        description="The chance this variant was served: 1 for the only possible one, "
        "shares under exploration or a random arm, 0 when it could not serve."
    )
    predictive_source: str | None = Field(
        None,
        description="What scored `components.predictive`: `response:<version>` (the "
        "response model, per candidate), `propensity:<version>` (the fallback: the "
        "user's purchase propensity turned by the goal) or None.",
    )
    response: CandidateResponseBody | None = None


class FiredRuleBody(BaseModel):
    id: str
    priority: int
    action: str
    outcome: str = Field(
        description="applied; overridden (a higher-priority rule decided its variants); "
        "no_target (it selected nothing); triggered for a notification (see `triggers`)."
    )
    variants: list[str]
    overridden_by: list[str]


class TriggerBody(BaseModel):
    rule_id: str
    notification: str
    outbox_id: str | None
    status: str = Field(
        description="queued; duplicate (already recorded for this user, rule and window); "
        "deferred (the outbox database failed: spooled on disk, recorded when it answers); "
        "not_recorded (the disk failed too)."
    )


class ExperimentBody(BaseModel):
    key: str | None = Field(description="The experiment; None for the placement's holdout.")
    arm: str = Field(description="The arm served, or `holdout`.")
    bucket: float | None = Field(description="The user's hash in [0, 1) for the experiment.")
    sticky: bool = Field(description="The arm is the user's stored first exposure.")


class DecisionBody(BaseModel):
    decision_id: str
    user_id: int
    placement: str
    variant: VariantBody
    score: float
    personalized: bool = Field(
        description="False when consent is withheld or unknown, or no personal features were read."
    )
    candidates: list[CandidateBody]
    weights: dict[str, float]
    propensity: float | None
    propensity_percentile: float | None
    model_explanation: ModelExplanation | None
    rules_fired: list[FiredRuleBody]
    winning_rule: str | None
    triggers: list[TriggerBody]
    cold_start: bool = Field(description="True when the store has no behavior for this user.")
    signals: dict[str, Any] = Field(
        description="The user facts behind the behavioral score and the response model (30-day "
        "taste and category mix, live session, cart)."
    )
    model_version: str | None
    response_model_version: str | None = Field(
        None, description="The response model that scored the candidates, if one did."
    )
    config_version: str
    feature_service: str
    degraded: list[str] = Field(
        description="Why the decision is not fully personalized; empty when all went well."
    )
    experiment: ExperimentBody | None = Field(
        None, description="The experiment arm or holdout this decision belongs to, if any."
    )
    action_probability: float = Field(
        1.0,
        description="The probability with which the served variant was chosen: 1 for a "
        "deterministic choice, less under exploration or a random arm (see each "
        "candidate's `probability`).",
    )
