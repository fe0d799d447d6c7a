"""The response model in the decision path, on the demo's flow: the demo trained it from
its simulated week, so the engine scores each candidate with it and explains each; a
published model that cannot be read degrades to the propensity fallback, never fails."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from serving.decision.placements import Placement
from serving.decision.schemas import DecisionBody, PersonalizeRequest
from serving.wiring import build_services
from tailor.core.model_artifact import LATEST
from tailor.core.response_artifact import (
    has_response_model,
    load_response_model,
    response_models_dir,
)
from tailor.core.settings import TailorSettings
from tests.support.flow import Flow

USER = 15  # a known user of the flow's generated history


def _decide(settings: TailorSettings, explain: bool) -> tuple[DecisionBody, Placement]:
    services = build_services(settings)
    try:
        snapshot = services.engine.config.current
        request = PersonalizeRequest.model_validate(
            {
                "user_id": USER,
                "placement": "homepage_banner",
                "context": {"device": "desktop", "country": "DE", "page": "home"},
                "explain_candidates": explain,
            }
        )
        decision = services.engine.decide(request, snapshot)
        return decision, snapshot.placements.config.placements["homepage_banner"]
    finally:
        services.close()


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_the_response_model_scores_and_explains_each_candidate(flow: Flow):
    settings = flow.settings(serving={"explain_top_features": 1000})
    assert has_response_model(flow.models_dir), "the demo's closed loop trains one"
    model = load_response_model(flow.models_dir)
    decision, placement = _decide(settings, explain=True)
    assert decision.personalized and decision.degraded == []
    assert decision.response_model_version == model.version
    goals = {variant.id: variant.goal for variant in placement.variants}
    conversion_scores = set()
    for candidate in decision.candidates:
        assert candidate.predictive_source == f"response:{model.version}"
        response = candidate.response
        assert response is not None and response.explanation is not None
        target = "click" if goals[candidate.variant_id] == "engagement" else "conversion"
        assert response.target == target
        probability = getattr(response, f"{target}_probability")
        # The component is the target's probability on the model's percentile scale...
        quantiles = model.metadata["quantiles"][target]
        expected = np.interp(probability, quantiles, np.linspace(0, 1, len(quantiles)))
        assert candidate.components.predictive == pytest.approx(expected)
        # ...and the contributions (all of them, here) add up to its log-odds.
        explanation = response.explanation
        total = explanation.bias + sum(c.contribution for c in explanation.top_contributions)
        assert total == pytest.approx(_logit(probability), abs=1e-6)
        if target == "conversion":
            conversion_scores.add(round(candidate.components.predictive, 9))
    # Unlike the propensity fallback, which gives every conversion variant one value.
    assert len(conversion_scores) > 1
    plain, _ = _decide(settings, explain=False)
    assert all(c.response and c.response.explanation is None for c in plain.candidates)


def _models_without_response(flow: Flow, home: Path) -> Path:
    """The flow's propensity model, and no response model beside it."""
    models = home / "models"
    models.mkdir()
    (models / LATEST).symlink_to((flow.models_dir / LATEST).resolve(), target_is_directory=True)
    return models


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
    models = _models_without_response(flow, tmp_path)
    decision, _ = _decide(flow.settings(models_dir=models), explain=True)
    _falls_back(decision)
    assert decision.degraded == []  # never trained: the fallback is the design


def test_a_broken_response_model_degrades_to_the_fallback(flow: Flow, tmp_path: Path):
    models = _models_without_response(flow, tmp_path)
    broken = response_models_dir(models) / "v1"
    broken.mkdir(parents=True)
    (broken / "metadata.json").write_text("{not json")
    (response_models_dir(models) / LATEST).symlink_to("v1", target_is_directory=True)
    decision, _ = _decide(flow.settings(models_dir=models), explain=True)
    _falls_back(decision)
    assert "response_model_unavailable" in decision.degraded
