"""Feature services: the contract between a model version and the API."""

from feast import FeatureService

from feature_repo.feature_views import session_activity, user_behavior
from feature_repo.on_demand_views import request_features

personalization_v1 = FeatureService(
    name="personalization_v1",
    features=[user_behavior, session_activity, request_features],
    description="Behavioral (batch and live session) and contextual features; model and API.",
    tags={"model": "purchase_propensity"},
)
