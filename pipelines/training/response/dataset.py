"""The response model's training set, read from the decision log and its outcomes.

Point in time by construction: every input is what the decision logged when it was
made (the feature vector, the taste summary in its body, the request's context), never
a value read later. Only decisions with a logged feature vector count (the others were
not personalised, or not sampled), and only those whose conversion window has closed,
so a missing outcome means "did not happen", not "not yet".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from tailor.core.database.decision_outcomes import per_decision
from tailor.core.database.schema import decisions
from tailor.core.response_features import (
    CandidateSchema,
    CandidateVariant,
    ResponseContext,
    candidate_rows,
    response_context,
)


@dataclass(frozen=True)
class LoggedDecision:
    decision_id: str
    decided_at: datetime
    placement: str
    context: ResponseContext
    variant: CandidateVariant  # the one served
    action_probability: float  # the logging policy's chance of serving it
    clicked: bool
    converted: bool


@dataclass(frozen=True)
class TrainingSet:
    schema: CandidateSchema
    rows: np.ndarray  # (decisions, schema.columns)
    clicked: np.ndarray
    converted: np.ndarray
    weights: np.ndarray  # clipped 1 / action_probability
    decided_at: np.ndarray  # datetime64, for the temporal split


def shown_variant(decision: Mapping[str, Any]) -> CandidateVariant | None:
    """The served variant as the decision body states it; None for a body logged
    before it carried the variant's goal (its goal cannot be told)."""
    variant = decision.get("variant") or {}
    if variant.get("goal") is None:
        return None
    return CandidateVariant(
        variant_id=variant["id"],
        category=variant.get("category"),
        tags=tuple(variant.get("tags") or ()),
        goal=variant["goal"],
    )


def logged_decisions(database: Engine, start: datetime, end: datetime) -> list[LoggedDecision]:
    """Decisions made in [start, end) with a logged feature vector, oldest first."""
    flags = per_decision()
    query = (
        select(
            decisions.c.decision_id,
            decisions.c.created_at,
            decisions.c.placement,
            decisions.c.request,
            decisions.c.decision,
            decisions.c.features,
            decisions.c.action_probability,
            flags.c.click,
            flags.c.conversion,
        )
        .outerjoin(flags, flags.c.decision_id == decisions.c.decision_id)
        .where(
            decisions.c.created_at >= start,
            decisions.c.created_at < end,
            decisions.c.features.is_not(None),
        )
        .order_by(decisions.c.created_at, decisions.c.decision_id)
    )
    logged = []
    with database.connect() as connection:
        for row in connection.execute(query):
            variant = shown_variant(row.decision)
            if variant is None:
                continue
            device = ((row.request or {}).get("context") or {}).get("device")
            logged.append(
                LoggedDecision(
                    decision_id=row.decision_id,
                    decided_at=row.created_at,
                    placement=row.placement,
                    context=response_context(
                        row.features, row.decision.get("signals") or {}, device, row.created_at.hour
                    ),
                    variant=variant,
                    action_probability=row.action_probability,
                    clicked=bool(row.click),
                    converted=bool(row.conversion),
                )
            )
    return logged


def ipw_weights(probabilities: np.ndarray, clip: float) -> np.ndarray:
    """1 / p, at most `clip`: each logged row stands for the decisions the logging
    policy would have made otherwise, so its preferences do not leak into the model."""
    return np.minimum(1.0 / np.asarray(probabilities, dtype=float), clip)


def schema_of(logged: list[LoggedDecision]) -> CandidateSchema:
    """The columns the log supports: the logged feature names, and the categories and
    tags of the variants it served."""
    return CandidateSchema(
        user_features=tuple(sorted({name for d in logged for name in d.context.features})),
        categories=tuple(sorted({d.variant.category for d in logged if d.variant.category})),
        tags=tuple(sorted({tag for d in logged for tag in d.variant.tags})),
    )


def variant_catalogue(logged: list[LoggedDecision]) -> dict[str, list[CandidateVariant]]:
    """Per placement, every variant the log served: the candidates the percentile
    tables are built over."""
    catalogue: dict[str, dict[str, CandidateVariant]] = {}
    for decision in logged:
        catalogue.setdefault(decision.placement, {})[decision.variant.variant_id] = decision.variant
    return {placement: list(variants.values()) for placement, variants in catalogue.items()}


def training_set(logged: list[LoggedDecision], clip: float) -> TrainingSet:
    schema = schema_of(logged)
    return TrainingSet(
        schema=schema,
        rows=np.vstack([candidate_rows(schema, d.context, [d.variant]) for d in logged]),
        clicked=np.array([d.clicked for d in logged], dtype=float),
        converted=np.array([d.converted for d in logged], dtype=float),
        weights=ipw_weights(np.array([d.action_probability for d in logged]), clip),
        decided_at=np.array(
            [d.decided_at.replace(tzinfo=None) for d in logged], dtype="datetime64[us]"
        ),
    )
