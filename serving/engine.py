"""The decision path of POST /v1/personalize: features -> model -> scores -> choice.

Every dependency may fail; each failure narrows the decision (a signal drops out and
gives up its weight) and is named in `degraded`, never raised to the caller.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np

from feature_repo.feature_services import personalization_v1
from pipelines.model_artifact import ModelArtifact
from serving.features import FeatureStoreUnavailable, OnlineFeatures, UserFeatures
from serving.metrics import DECISION_SECONDS, DECISIONS, DEGRADED
from serving.placements import LoadedPlacements
from serving.schemas import (
    CandidateBody,
    Components,
    DecisionBody,
    PersonalizeRequest,
    VariantBody,
)
from serving.scoring import RequestFacts, UserSignals, rank_candidates

log = logging.getLogger(__name__)

DEFAULT_FEATURE_SERVICE = personalization_v1.name


def feature_service_for(model: ModelArtifact | None) -> str:
    """The model's own service, so features always match its training; the default
    when serving without a model."""
    return model.feature_service if model else DEFAULT_FEATURE_SERVICE


SESSION_ACTIVE_MINUTES = 30.0
STORE_FAILURES = frozenset({"feature_store_unavailable", "feature_store_timeout"})


def _as_float(value: Any) -> float:
    return math.nan if value is None else float(value)


def user_signals(features: dict[str, Any], percentile: float | None) -> UserSignals:
    """The taste facts scoring needs; session interest counts only while the session lives."""
    minutes_idle = features.get("minutes_since_session_event_now")
    session_views = features.get("session_views_30m") or 0
    active = minutes_idle is not None and minutes_idle <= SESSION_ACTIVE_MINUTES
    session_top = features.get("session_top_category") if active and session_views else None
    return UserSignals(
        top_category=features.get("top_category_30d"),
        top_category_share=features.get("top_category_share_30d"),
        propensity_percentile=percentile,
        session_top_category=session_top,
        session_top_share=(
            (features.get("session_top_category_views_30m") or 0) / session_views
            if session_top
            else None
        ),
    )


def signals_summary(features: dict[str, Any], user: UserSignals) -> dict[str, Any]:
    return {
        "top_category_30d": user.top_category,
        "top_category_share_30d": user.top_category_share,
        "session_top_category": user.session_top_category,
        "session_top_share": user.session_top_share,
        "session_events_30m": features.get("session_events_30m"),
        "cart_items": features.get("cart_items"),
        "cart_value": features.get("cart_value"),
        "minutes_since_cart_abandoned": features.get("minutes_since_cart_abandoned_now"),
    }


class DecisionEngine:
    def __init__(
        self,
        placements: LoadedPlacements,
        features: OnlineFeatures | None,
        model: ModelArtifact | None,
    ) -> None:
        self.placements = placements
        self.features = features
        self.model = model
        self.categories = sorted(
            {
                variant.category
                for placement in placements.config.placements.values()
                for variant in placement.variants
                if variant.category is not None
            }
        )

    @property
    def feature_service(self) -> str:
        return feature_service_for(self.model)

    def model_row(self, features: dict[str, Any]) -> np.ndarray:
        assert self.model is not None
        return np.array([[_as_float(features.get(name)) for name in self.model.features]])

    def _read_features(
        self, request: PersonalizeRequest, moment: datetime, degraded: list[str]
    ) -> tuple[dict[str, Any], dict[str, float]]:
        if self.features is None:
            degraded.append("feature_store_unavailable")
            return {}, {}
        context = request.context
        try:
            read: UserFeatures = self.features.user_features(
                request.user_id, context.device, context.country, int(moment.timestamp())
            )
        except FeatureStoreUnavailable as error:
            log.warning("deciding without features for user %s: %s", request.user_id, error)
            degraded.append(error.reason)
            return {}, {}
        degraded.extend(f"stale_features:{view}" for view in read.stale_views)
        features = read.values
        try:
            popularity = self.features.category_popularity(self.categories)
        except FeatureStoreUnavailable:
            degraded.append("category_stats_unavailable")
            popularity = {}
        return features, popularity

    def _score(
        self, features: dict[str, Any], degraded: list[str]
    ) -> tuple[float | None, float | None]:
        if self.model is None:
            degraded.append("model_unavailable")
            return None, None
        if not features:
            return None, None
        try:
            propensity = float(self.model.predict(self.model_row(features))[0])
            return propensity, self.model.percentile(propensity)
        except Exception:
            log.exception("model %s failed to score", self.model.version)
            degraded.append("model_failed")
            return None, None

    def decide(self, request: PersonalizeRequest) -> DecisionBody:
        with DECISION_SECONDS.time():
            placement = self.placements.config.placements[request.placement]
            moment = request.context.timestamp or datetime.now(UTC)
            degraded: list[str] = []
            features, popularity = self._read_features(request, moment, degraded)
            cold_start = (
                self.features is None or not features or (self.features.is_cold_start(features))
            )
            propensity, percentile = self._score(features, degraded)
            user = user_signals(features, percentile)
            facts = RequestFacts(
                device=request.context.device,
                hour=moment.astimezone(UTC).hour,
                page=request.context.page,
            )
            ranked = rank_candidates(placement, user, facts, popularity)
            # Without the store there is nothing personal to rank on: serve the safe default.
            winner = ranked[0]
            if STORE_FAILURES.intersection(degraded):
                winner = next(c for c in ranked if c.variant.id == placement.fallback_variant)
            chosen = winner.variant
            DECISIONS.labels(request.placement, chosen.id).inc()
            for reason in degraded:
                DEGRADED.labels(reason).inc()
            return DecisionBody(
                decision_id=uuid.uuid4().hex,
                user_id=request.user_id,
                placement=request.placement,
                variant=VariantBody(
                    id=chosen.id,
                    content=chosen.content,
                    category=chosen.category,
                    tags=list(chosen.tags),
                ),
                score=winner.score,
                candidates=[
                    CandidateBody(
                        variant_id=candidate.variant.id,
                        score=candidate.score,
                        components=Components(**candidate.components),
                    )
                    for candidate in ranked
                ],
                weights=placement.weights.model_dump(),
                propensity=propensity,
                propensity_percentile=percentile,
                cold_start=cold_start,
                signals=signals_summary(features, user),
                model_version=self.model.version if self.model else None,
                config_version=self.placements.version,
                feature_service=self.feature_service,
                degraded=degraded,
            )
