"""Per-user history as a daily batch feature pipeline sees it at midnight UTC.

Purchase probabilities may only depend on this snapshot (plus the request context),
never on events earlier the same day: that is exactly what a model fed by daily
features can know, so the generated propensity is learnable rather than leaky.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW_DAYS = 30
_NEVER = np.iinfo(np.int64).min


@dataclass(frozen=True)
class DayStart:
    """A user's state at the start of one day; one entry per user of the chunk."""

    days_since_active: np.ndarray  # float days since the last active day; inf if never
    sessions_30d: np.ndarray  # sessions in the previous WINDOW_DAYS days
    open_cart: np.ndarray  # last add_to_cart happened after the last purchase
    top_category_share: np.ndarray  # share of the favourite category in 30-day views; nan if none
    purchased_yesterday: np.ndarray


@dataclass(frozen=True)
class DayActivity:
    """What one simulated day adds to the history."""

    sessions: np.ndarray  # (users,) sessions per user
    views: np.ndarray  # (users, categories) view counts
    add_users: np.ndarray  # user index per add_to_cart event
    add_ts: np.ndarray  # its timestamp, epoch microseconds
    purchase_users: np.ndarray
    purchase_ts: np.ndarray


class UserState:
    """Rolling 30-day windows kept as per-day ring buffers plus running sums.

    Subtracting the day that leaves the window keeps each update O(users x categories)
    and the memory fixed, however many days are simulated.
    """

    def __init__(self, users: int, categories: int) -> None:
        self._last_active_day = np.full(users, _NEVER, dtype=np.int64)
        self._last_purchase_day = np.full(users, _NEVER, dtype=np.int64)
        self._last_add_ts = np.full(users, _NEVER, dtype=np.int64)
        self._last_purchase_ts = np.full(users, _NEVER, dtype=np.int64)
        self._session_ring = np.zeros((WINDOW_DAYS, users), dtype=np.int32)
        self._sessions_30d = np.zeros(users, dtype=np.int64)
        # uint16 is ample for one user's views of one category in one day and halves
        # the largest buffer (30 x users x categories).
        self._view_ring = np.zeros((WINDOW_DAYS, users, categories), dtype=np.uint16)
        self._views_30d = np.zeros((users, categories), dtype=np.int64)

    def day_start(self, day: int) -> DayStart:
        """The snapshot at midnight before `day`, which must follow the last recorded day."""
        ever_active = self._last_active_day != _NEVER
        days_since = np.full(len(ever_active), np.inf)
        days_since[ever_active] = day - self._last_active_day[ever_active]
        total_views = self._views_30d.sum(axis=1)
        top_share = np.divide(
            self._views_30d.max(axis=1),
            total_views,
            out=np.full(len(total_views), np.nan),
            where=total_views > 0,
        )
        return DayStart(
            days_since_active=days_since,
            sessions_30d=self._sessions_30d.copy(),
            open_cart=self._last_add_ts > self._last_purchase_ts,
            top_category_share=top_share,
            purchased_yesterday=self._last_purchase_day == day - 1,
        )

    def record(self, day: int, activity: DayActivity) -> None:
        """Fold one day into the history; days must be recorded in order."""
        slot = day % WINDOW_DAYS
        self._sessions_30d += activity.sessions - self._session_ring[slot]
        self._session_ring[slot] = activity.sessions
        views = np.minimum(activity.views, np.iinfo(np.uint16).max).astype(np.uint16)
        self._views_30d += views.astype(np.int64) - self._view_ring[slot]
        self._view_ring[slot] = views
        self._last_active_day[activity.sessions > 0] = day
        self._last_purchase_day[activity.purchase_users] = day
        np.maximum.at(self._last_add_ts, activity.add_users, activity.add_ts)
        np.maximum.at(self._last_purchase_ts, activity.purchase_users, activity.purchase_ts)
