"""Online feature reads through the model's feature service."""

from __future__ import annotations

import threading
import time
from typing import Any

from feast import FeatureStore

POPULARITY_FEATURE = "category_stats:popularity_7d"


class OnlineFeatures:
    """Reads one user's features per request; category popularity is shared and cached.

    Popularity changes once a day with the marts, so reading it per request would
    only add a lookup to every decision.
    """

    def __init__(
        self, store: FeatureStore, service_name: str, popularity_ttl_seconds: float = 60.0
    ) -> None:
        self._store = store
        self.service_name = service_name
        self._service = store.get_feature_service(service_name)
        on_demand = {view.name for view in store.list_on_demand_feature_views()}
        self._behavior_features = [
            field.name
            for projection in self._service.feature_view_projections
            if projection.name not in on_demand
            for field in projection.features
        ]
        self._popularity_ttl = popularity_ttl_seconds
        self._popularity: dict[str, float] = {}
        self._popularity_read_at = float("-inf")
        self._lock = threading.Lock()

    def user_features(
        self, user_id: int, device: str, country: str, request_ts_s: int
    ) -> dict[str, Any]:
        row = {
            "user_id": user_id,
            "device": device,
            "country": country,
            "request_ts_s": request_ts_s,
        }
        response = self._store.get_online_features(features=self._service, entity_rows=[row])
        return {name: values[0] for name, values in response.to_dict().items()}

    def is_cold_start(self, features: dict[str, Any]) -> bool:
        return all(features.get(name) is None for name in self._behavior_features)

    def category_popularity(self, categories: list[str]) -> dict[str, float]:
        with self._lock:
            if time.monotonic() - self._popularity_read_at < self._popularity_ttl:
                return self._popularity
        response = self._store.get_online_features(
            features=[POPULARITY_FEATURE],
            entity_rows=[{"category": category} for category in categories],
        ).to_dict()
        popularity = {
            category: float(value)
            for category, value in zip(response["category"], response["popularity_7d"], strict=True)
            if value is not None
        }
        with self._lock:
            self._popularity, self._popularity_read_at = popularity, time.monotonic()
        return popularity
