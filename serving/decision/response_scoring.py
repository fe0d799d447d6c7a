"""The response model's predictive signal: every candidate of a placement scored in one
predict call per target, from the same columns training read from the log
(`tailor.core.response_features`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from serving.decision.placements import Variant
from serving.decision.schemas import CandidateResponseBody, ModelExplanation
from tailor.core.response_artifact import TARGETS, ResponseModel, target_for_goal
from tailor.core.response_features import CandidateVariant, candidate_rows, response_context


@dataclass(frozen=True)
class ResponseScores:
    version: str
    predictive: dict[str, float]  # variant id -> percentile of its goal's probability
    candidates: dict[str, CandidateResponseBody] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return f"response:{self.version}"


def score_candidates(
    model: ResponseModel,
    features: Mapping[str, Any],
    signals: Mapping[str, Any],
    device: str | None,
    hour: int,
    variants: Sequence[Variant],
    explain_top: int | None = None,
) -> ResponseScores:
    """`signals` is the decision body's taste summary, as the log keeps it; with
    `explain_top`, each candidate carries its target's top contributions."""
    schema = model.schema
    candidates = [CandidateVariant(v.id, v.category, tuple(v.tags), v.goal) for v in variants]
    rows = candidate_rows(schema, response_context(features, signals, device, hour), candidates)
    probabilities = {target: model.predict(rows, target) for target in TARGETS}
    percentiles = {target: model.percentile(probabilities[target], target) for target in TARGETS}
    contributions = (
        {target: model.contributions(rows, target) for target in TARGETS}
        if explain_top is not None
        else None
    )
    columns = schema.columns
    predictive, bodies = {}, {}
    for index, variant in enumerate(variants):
        target = target_for_goal(variant.goal)
        predictive[variant.id] = float(percentiles[target][index])
        bodies[variant.id] = CandidateResponseBody(
            click_probability=float(probabilities["click"][index]),
            conversion_probability=float(probabilities["conversion"][index]),
            target=target,
            explanation=(
                None
                if contributions is None or explain_top is None
                else ModelExplanation.top_of(
                    contributions[target][index], rows[index], columns, explain_top
                )
            ),
        )
    return ResponseScores(model.version, predictive, bodies)
