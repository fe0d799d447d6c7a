"""The response model in the decision path, on the demo's flow: trained here from the
flow's simulated week, it scores each candidate and explains each; a published model
that cannot be read degrades to the propensity fallback, never fails."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from pipelines.training.response.train import train_response_model
from serving.decision.placements import Placement
from serving.decision.schemas import DecisionBody, PersonalizeRequest
from serving.wiring import build_services
from tailor.core.database.engine import open_database
from tailor.core.database.schema import decisions
from tailor.core.model_artifact import LATEST
from tailor.core.response_artifact import (
    load_response_model,
    response_models_dir,
)
from tailor.core.response_features import CandidateVariant, candidate_rows, response_context
from tailor.core.settings import TailorSettings
from tests.support.flow import CLOCK_START, Flow

USER = 15  # a known user of the flow's generated history


def _decide(
    settings: TailorSettings, explain: bool, placement: str = "homepage_banner"
) -> tuple[DecisionBody, Placement]:
    services = build_services(settings)
    try:
        snapshot = services.engine.config.current
        request = PersonalizeRequest.model_validate(
            {
                "user_id": USER,
                "placement": placement,
                "context": {"device": "desktop", "country": "DE", "page": "home"},
                "explain_candidates": explain,
            }
        )
        decision = services.engine.decide(request, snapshot)
        return decision, snapshot.placements.config.placements[placement]
    finally:
        services.close()


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


@pytest.fixture(scope="module")
def response_models(flow: Flow, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flow's propensity model, and a response model learned from its logged week."""
    models = flow.propensity_models(tmp_path_factory.mktemp("response"))
    settings = flow.settings(models_dir=models, response_model={"min_conversions": 10})
    train_response_model(settings, end=CLOCK_START)
    return models


def _logged(settings: TailorSettings, decision_id: str) -> tuple[dict, datetime]:
    database = open_database(settings.decision_database_url)
    try:
        with database.connect() as connection:
            row = connection.execute(
                select(decisions.c.features, decisions.c.created_at).where(
                    decisions.c.decision_id == decision_id
                )
            ).one()
    finally:
        database.dispose()
    return row.features, row.created_at


def test_the_response_model_scores_and_explains_each_candidate(flow: Flow, response_models):
    settings = flow.settings(models_dir=response_models)
    model = load_response_model(response_models)
    decision, placement = _decide(settings, explain=True)
    assert decision.personalized and decision.degraded == []
    assert decision.response_model_version == model.version
    # What the decision logged rebuilds its scores: training reads what serving computed.
    features, decided_at = _logged(settings, decision.decision_id)
    variants = [
        CandidateVariant(v.id, v.category, tuple(v.tags), v.goal) for v in placement.variants
    ]
    context = response_context(features, decision.signals, "desktop", decided_at.hour)
    rows = candidate_rows(model.schema, context, variants)
    columns = model.schema.columns
    conversion_scores = set()
    for index, variant in enumerate(placement.variants):
        (candidate,) = [c for c in decision.candidates if c.variant_id == variant.id]
        assert candidate.predictive_source == f"response:{model.version}"
        response = candidate.response
        assert response is not None and response.explanation is not None
        target = "click" if variant.goal == "engagement" else "conversion"
        assert response.target == target
        probability = getattr(response, f"{target}_probability")
        assert probability == pytest.approx(model.predict(rows[index : index + 1], target)[0])
        # The component is the target's probability on the model's percentile scale...
        quantiles = model.metadata["quantiles"][target]
        expected = np.interp(probability, quantiles, np.linspace(0, 1, len(quantiles)))
        assert candidate.components.predictive == pytest.approx(expected)
        # ...explained by its largest contributions, which with the rest add up to its
        # log-odds.
        contributions = model.contributions(rows[index : index + 1], target)[0]
        assert contributions.sum() == pytest.approx(_logit(probability), abs=1e-6)
        explanation = response.explanation
        assert explanation.bias == pytest.approx(contributions[-1])
        listed = {c.feature: c.contribution for c in explanation.top_contributions}
        largest = sorted(range(len(columns)), key=lambda i: -abs(contributions[i]))
        assert list(listed) == [columns[i] for i in largest[: len(listed)]]
        assert len(listed) == settings.serving.explain_top_features
        if target == "conversion":
            conversion_scores.add(round(candidate.components.predictive, 9))
    # Unlike the propensity fallback, which gives every conversion variant one value.
    assert len(conversion_scores) > 1
    plain, _ = _decide(settings, explain=False)
    assert all(c.response and c.response.explanation is None for c in plain.candidates)


def test_a_placement_the_log_never_showed_keeps_the_fallback(flow: Flow, response_models):
    assert load_response_model(response_models).placements == {"homepage_banner"}
    decision, _ = _decide(
        flow.settings(models_dir=response_models), explain=True, placement="product_page_recs"
    )
    _falls_back(decision)
    assert decision.degraded == []


def _falls_back(decision: DecisionBody) -> None:
    conversion = [
        c
        for c in decision.candidates
        if c.response is None and c.predictive_source == f"propensity:{decision.model_version}"
    ]
    assert len(conversion) == len(decision.candidates)
    assert decision.response_model_version is None
    percentile = decision.propensity_percentile
    assert percentile is not None
    values = {round(c.components.predictive, 9) for c in decision.candidates}
    assert values <= {round(percentile, 9), round(1 - percentile, 9)}


def test_without_a_response_model_the_propensity_fallback_scores(flow: Flow, tmp_path: Path):
    models = flow.propensity_models(tmp_path)
    decision, _ = _decide(flow.settings(models_dir=models), explain=True)
    _falls_back(decision)
    assert decision.degraded == []  # never trained: the fallback is the design


def test_a_broken_response_model_degrades_to_the_fallback(flow: Flow, tmp_path: Path):
    models = flow.propensity_models(tmp_path)
    broken = response_models_dir(models) / "v1"
    broken.mkdir(parents=True)
    (broken / "metadata.json").write_text("{not json")
    (response_models_dir(models) / LATEST).symlink_to("v1", target_is_directory=True)
    decision, _ = _decide(flow.settings(models_dir=models), explain=True)
    _falls_back(decision)
    assert "response_model_unavailable" in decision.degraded
