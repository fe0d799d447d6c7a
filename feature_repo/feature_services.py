"""Feature services: the contract between a model version and the API."""

from feast import FeatureService

from feature_repo.feature_views import user_behavior
from feature_repo.on_demand_views import request_features

personalization_v1 = FeatureService(
    name="personalization_v1",
    features=[user_behavior, request_features],
    description="Behavioral and contextual features of the purchase-propensity model.",
    tags={"model": "purchase_propensity"},
)
