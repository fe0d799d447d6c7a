"""Online feature reads through the model's feature service, with a freshness guard."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from feast import FeatureStore

from feature_repo.on_demand_views import DERIVED_FROM_VIEW

POPULARITY_FEATURE = "category_stats:popularity_7d"
TIMESTAMP_SUFFIX = "__ts"


class FeatureStoreUnavailable(RuntimeError):
    """The online store failed, was slower than the budget, or is being skipped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class UserFeatures:
    values: dict[str, Any]
    stale_views: list[str] = field(default_factory=list)


class OnlineFeatures:
    """Reads one user's features per request; category popularity is shared and cached.

    Feast does not apply a view's TTL on the online read path, so values older than
    their view's TTL are blanked here. A batch view that old means the pipeline stalled,
    so it is reported stale; a push-fed (session) view that old only means the user has
    not been active since, so it is blanked silently (the stream's health shows in its
    lag and dead-letter metrics, not per user). A session snapshot dated after the
    decision's instant (beyond `session_ahead_seconds` of clock skew) is blanked too:
    the decision replays a past moment, and that session had not happened yet. Batch
    views are read as they are: their daily snapshots are what the store has. Popularity
    changes once a day with the marts, so it is read at most once a minute.

    Reads run on a small pool and are waited for at most `budget_ms`; after
    `breaker_failures` failures or timeouts in a row the store is skipped for
    `breaker_seconds`, so a dead Redis costs each request nothing instead of a
    client's retry schedule, while one slow read under load only costs its request.
    """

    def __init__(
        self,
        store: FeatureStore,
        service_name: str,
        budget_ms: float,
        breaker_seconds: float,
        breaker_failures: int,
        popularity_ttl_seconds: float = 60.0,
        session_ahead_seconds: float = 60.0,
    ) -> None:
        self._store = store
        self._budget = budget_ms / 1000
        self._breaker_seconds = breaker_seconds
        self._breaker_failures = breaker_failures
        self._failures_in_a_row = 0
        self._open_until = float("-inf")
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="online-read")
        self.service_name = service_name
        self._service = store.get_feature_service(service_name)
        on_demand = {view.name for view in store.list_on_demand_feature_views()}
        # view -> (TTL in seconds, its features, the on-demand outputs measured from it)
        self._view_features: dict[str, tuple[float, list[str], list[str]]] = {}
        self._push_fed: set[str] = set()
        for projection in self._service.feature_view_projections:
            if projection.name in on_demand:
                continue
            view = store.get_feature_view(projection.name)
            ttl = view.ttl.total_seconds() if view.ttl else float("inf")
            derived = [name for name, source in DERIVED_FROM_VIEW.items() if source == view.name]
            self._view_features[projection.name] = (
                ttl or float("inf"),
                [feature.name for feature in projection.features],
                derived,
            )
            if view.stream_source is not None:
                self._push_fed.add(projection.name)
        self._popularity_ttl = popularity_ttl_seconds
        self._session_ahead = session_ahead_seconds
        self._popularity: dict[str, float] = {}
        self._popularity_read_at = float("-inf")
        self._lock = threading.Lock()

    def warm_up(self, categories: list[str], now: datetime) -> None:
        """One unbudgeted read at start-up: Feast's first call loads the registry and
        opens connections (hundreds of ms), which must not count against a request."""
        self._read_user(0, "desktop", "US", int(now.timestamp()))
        self._read_popularity(categories)

    def _guarded(self, read, *args):
        if time.monotonic() < self._open_until:
            raise FeatureStoreUnavailable("feature_store_unavailable")
        future = self._pool.submit(read, *args)
        try:
            result = future.result(timeout=self._budget)
        except FutureTimeout:
            self._count_failure()
            raise FeatureStoreUnavailable("feature_store_timeout") from None
        except Exception as error:
            self._count_failure()
            raise FeatureStoreUnavailable("feature_store_unavailable") from error
        self._failures_in_a_row = 0
        return result

    def _count_failure(self) -> None:
        self._failures_in_a_row += 1
        if self._failures_in_a_row >= self._breaker_failures:
            self._open_until = time.monotonic() + self._breaker_seconds

    def user_features(
        self, user_id: int, device: str | None, country: str | None, request_ts_s: int
    ) -> UserFeatures:
        return self._guarded(self._read_user, user_id, device, country, request_ts_s)

    def _read_user(
        self, user_id: int, device: str | None, country: str | None, request_ts_s: int
    ) -> UserFeatures:
        row = {
            "user_id": user_id,
            "device": device,
            "country": country,
            "request_ts_s": request_ts_s,
        }
        response = self._store.get_online_features(features=self._service, entity_rows=[row])
        raw = response.to_dict(include_event_timestamps=True)
        values = {
            name: column[0] for name, column in raw.items() if not name.endswith(TIMESTAMP_SUFFIX)
        }
        stale = []
        for view, (ttl, names, derived) in self._view_features.items():
            written = max((raw.get(name + TIMESTAMP_SUFFIX, [0])[0] or 0) for name in names)
            if not written:
                continue
            expired = request_ts_s - written > ttl
            if expired and view not in self._push_fed:
                stale.append(view)
            ahead = view in self._push_fed and written - request_ts_s > self._session_ahead
            if expired or ahead:
                values.update(dict.fromkeys(names + derived))
        return UserFeatures(values, stale)

    def is_cold_start(self, features: dict[str, Any]) -> bool:
        return all(
            features.get(name) is None
            for _, names, _ in self._view_features.values()
            for name in names
        )

    def category_popularity(self, categories: list[str]) -> dict[str, float]:
        with self._lock:
            if time.monotonic() - self._popularity_read_at < self._popularity_ttl:
                return self._popularity
        return self._guarded(self._read_popularity, categories)

    def _read_popularity(self, categories: list[str]) -> dict[str, float]:
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
