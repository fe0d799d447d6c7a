"""Tailor's Feast definitions, split by kind; `DEFINITIONS` is what `tailor apply` registers."""

from feast import FeatureService

from feature_repo.data_sources import (
    category_daily_source,
    request_context,
    session_log_source,
    session_push,
    user_daily_source,
)
from feature_repo.entities import category, user
from feature_repo.feature_services import personalization_v1
from feature_repo.feature_views import category_stats, session_activity, user_behavior
from feature_repo.on_demand_views import request_features

DEFINITIONS = [
    user,
    category,
    user_daily_source,
    category_daily_source,
    request_context,
    session_log_source,
    session_push,
    user_behavior,
    category_stats,
    session_activity,
    request_features,
    personalization_v1,
]


def feature_service(name: str) -> FeatureService:
    """The definition of a service by name, e.g. the one a model artifact was trained on."""
    services = {d.name: d for d in DEFINITIONS if isinstance(d, FeatureService)}
    if name not in services:
        raise KeyError(f"no feature service {name!r} in feature_repo; known: {sorted(services)}")
    return services[name]
