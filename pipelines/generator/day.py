"""One simulated day for a chunk of users, vectorized over users, sessions and events.

Everything is built as flat arrays with per-session offsets (no Python loop per session
or event), which is what makes a million users feasible.

A session is: 1 + Poisson(3) views, each possibly followed by an add_to_cart of the viewed
item, then optional tail events in this order: a remove_from_cart (of the session's first
carted item), an add_to_cart "rescue" (a buyer with an empty cart adds the last viewed
item first) and the purchase (of the last item still in the cart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.generator.behaviour import propensity_24h, session_probability
from pipelines.generator.catalogue import ITEMS_PER_CATEGORY
from pipelines.generator.population import MAIN_DEVICE_SHARE, Population
from pipelines.generator.state import DayActivity
from tailor.core.events import DEVICES, EVENT_TYPES

SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
DAY_US = 24 * HOUR_US

VIEW, ADD_TO_CART, REMOVE_FROM_CART, PURCHASE = (
    EVENT_TYPES.index(name) for name in ("view", "add_to_cart", "remove_from_cart", "purchase")
)
MEAN_EXTRA_VIEWS = 3.0
# Gaps are 1 s plus an exponential, ~45 s on average; the floor keeps event order strict.
_MIN_GAP_US = SECOND_US
_MEAN_EXTRA_GAP_US = 44 * SECOND_US
_START_SD_HOURS = 1.5
_MAX_START_SHIFT_HOURS = 3.0
REMOVE_PROBABILITY = 0.15
# remove_from_cart, rescue add_to_cart, purchase.
_TAIL_SLOTS = 3


@dataclass(frozen=True)
class DayBatch:
    """Sessions and events of one day; session arrays index users of the chunk."""

    session_user: np.ndarray
    session_rank: np.ndarray  # order of the session among the user's sessions that day
    session_start_us: np.ndarray  # microseconds after midnight
    session_device: np.ndarray
    p_session: np.ndarray
    propensity_24h: np.ndarray
    event_session: np.ndarray
    event_index: np.ndarray  # position within the session
    event_type: np.ndarray  # index into EVENT_TYPES
    event_category: np.ndarray
    event_rank: np.ndarray  # item rank within its category
    event_offset_us: np.ndarray  # microseconds after midnight

    def activity(self, users: int, categories: int, day_start_us: int) -> DayActivity:
        event_user = self.session_user[self.event_session]
        event_ts = day_start_us + self.event_offset_us
        views = self.event_type == VIEW
        adds = self.event_type == ADD_TO_CART
        purchases = self.event_type == PURCHASE
        view_counts = np.bincount(
            event_user[views] * categories + self.event_category[views],
            minlength=users * categories,
        )
        return DayActivity(
            sessions=np.bincount(self.session_user, minlength=users),
            views=view_counts.reshape(users, categories),
            add_users=event_user[adds],
            add_ts=event_ts[adds],
            purchase_users=event_user[purchases],
            purchase_ts=event_ts[purchases],
        )


def simulate_day(
    rng: np.random.Generator, population: Population, user_logit: np.ndarray, weekend: bool
) -> DayBatch:
    """Draw one day; `user_logit` is the day's per-user logit from the midnight snapshot."""
    rate = population.activity * population.weekend_factor if weekend else population.activity
    session_user = np.repeat(np.arange(population.size), rng.poisson(rate))
    sessions = len(session_user)

    views_per_session = 1 + rng.poisson(MEAN_EXTRA_VIEWS, sessions)
    view_start = _exclusive_cumsum(views_per_session)
    view_session = np.repeat(np.arange(sessions), views_per_session)
    view_category = _sample_categories(rng, population.category_cdf, session_user[view_session])
    # Squaring a uniform skews demand towards low ranks: a popular head and a long tail.
    view_rank = (ITEMS_PER_CATEGORY * rng.random(len(view_session)) ** 2).astype(np.int64)
    view_added = (
        rng.random(len(view_session)) < population.cart_tendency[session_user[view_session]]
    )
    adds_per_session = np.bincount(view_session, weights=view_added, minlength=sessions)
    adds_per_session = adds_per_session.astype(np.int64)
    removed = (adds_per_session > 0) & (rng.random(sessions) < REMOVE_PROBABILITY)
    device = _sample_devices(rng, population.main_device[session_user])

    # Browsing = the views with their add_to_carts interleaved, in session order.
    browse_view = np.repeat(np.arange(len(view_session)), 1 + view_added)
    browse_is_add = np.ones(len(browse_view), dtype=bool)
    browse_is_add[_exclusive_cumsum(1 + view_added)] = False
    browse_session = view_session[browse_view]
    browse_per_session = views_per_session + adds_per_session
    browse_start = _exclusive_cumsum(browse_per_session)
    browse_gap = _gaps(rng, len(browse_view))
    browse_gap[browse_start] = 0
    elapsed = np.cumsum(browse_gap)
    browse_offset = elapsed - elapsed[browse_start][browse_session]
    browse_end = browse_offset[browse_start + browse_per_session - 1]
    tail_offset = browse_end[:, None] + np.cumsum(_gaps(rng, (sessions, _TAIL_SLOTS)), axis=1)

    # The latest possible event (all tail slots used) must stay before midnight, so the
    # day's events are all visible in the next midnight snapshot.
    start = _session_starts(rng, population.peak_hour[session_user], tail_offset[:, -1])
    p_session = session_probability(user_logit[session_user], device, start // HOUR_US, weekend)
    bought = rng.random(sessions) < p_session

    first_add_view, last_add_view = _first_and_last_add(view_session, view_added, sessions)
    in_cart = adds_per_session - removed
    rescued = bought & (in_cart == 0)
    last_view = view_start + views_per_session - 1
    purchase_view = np.where(in_cart > 0, last_add_view, last_view)

    events_per_session = browse_per_session + removed + rescued + bought
    event_start = _exclusive_cumsum(events_per_session)
    total = int(events_per_session.sum())
    event_view = np.empty(total, dtype=np.int64)
    event_type = np.empty(total, dtype=np.int8)
    event_offset = np.empty(total, dtype=np.int64)

    position = (
        event_start[browse_session] + np.arange(len(browse_view)) - browse_start[browse_session]
    )
    event_view[position] = browse_view
    event_type[position] = np.where(browse_is_add, ADD_TO_CART, VIEW)
    event_offset[position] = browse_offset
    tail_slot = np.zeros(sessions, dtype=np.int64)
    for mask, kind, view in (
        (removed, REMOVE_FROM_CART, first_add_view),
        (rescued, ADD_TO_CART, last_view),
        (bought, PURCHASE, purchase_view),
    ):
        chosen = np.flatnonzero(mask)
        slot = tail_slot[chosen]
        position = event_start[chosen] + browse_per_session[chosen] + slot
        event_view[position] = view[chosen]
        event_type[position] = kind
        event_offset[position] = tail_offset[chosen, slot]
        tail_slot[chosen] += 1

    event_session = np.repeat(np.arange(sessions), events_per_session)
    return DayBatch(
        session_user=session_user,
        session_rank=_rank_within_user(session_user, start),
        session_start_us=start,
        session_device=device,
        p_session=p_session,
        propensity_24h=propensity_24h(p_session, population.activity[session_user]),
        event_session=event_session,
        event_index=np.arange(total) - event_start[event_session],
        event_type=event_type,
        event_category=view_category[event_view],
        event_rank=view_rank[event_view],
        event_offset_us=start[event_session] + event_offset,
    )


def _exclusive_cumsum(counts: np.ndarray) -> np.ndarray:
    """Start offset of each group in a flat array of groups with these sizes."""
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _gaps(rng: np.random.Generator, shape: int | tuple[int, int]) -> np.ndarray:
    return (_MIN_GAP_US + rng.exponential(_MEAN_EXTRA_GAP_US, shape)).astype(np.int64)


def _sample_categories(
    rng: np.random.Generator, category_cdf: np.ndarray, users: np.ndarray
) -> np.ndarray:
    """Inverse-CDF draw per row of `users`, in O(len(users)) memory.

    Shifting user i's CDF by i makes the flattened CDFs one sorted array, so a single
    searchsorted replaces a (draws x categories) comparison matrix.
    """
    categories = category_cdf.shape[1]
    shifted = (category_cdf + np.arange(len(category_cdf))[:, None]).ravel()
    position = np.searchsorted(shifted, users + rng.random(len(users)), side="right")
    return np.minimum(position - users * categories, categories - 1)


def _sample_devices(rng: np.random.Generator, main_device: np.ndarray) -> np.ndarray:
    other = (main_device + rng.integers(1, len(DEVICES), len(main_device))) % len(DEVICES)
    return np.where(rng.random(len(main_device)) < MAIN_DEVICE_SHARE, main_device, other)


def _session_starts(
    rng: np.random.Generator, peak_hour: np.ndarray, duration_us: np.ndarray
) -> np.ndarray:
    shift = np.clip(
        rng.normal(0.0, _START_SD_HOURS, len(peak_hour)),
        -_MAX_START_SHIFT_HOURS,
        _MAX_START_SHIFT_HOURS,
    )
    start = (np.mod(peak_hour + shift, 24.0) * HOUR_US).astype(np.int64)
    return np.clip(start, 0, DAY_US - 1 - duration_us)


def _first_and_last_add(
    view_session: np.ndarray, view_added: np.ndarray, sessions: int
) -> tuple[np.ndarray, np.ndarray]:
    """View index of each session's first and last add_to_cart; -1 without one."""
    added = np.flatnonzero(view_added)
    added_session = view_session[added]
    with_add = np.unique(added_session)
    first = np.full(sessions, -1, dtype=np.int64)
    last = np.full(sessions, -1, dtype=np.int64)
    first[with_add] = added[np.searchsorted(added_session, with_add, side="left")]
    last[with_add] = added[np.searchsorted(added_session, with_add, side="right") - 1]
    return first, last


def _rank_within_user(session_user: np.ndarray, start: np.ndarray) -> np.ndarray:
    """0 for a user's earliest session of the day, 1 for the next, and so on."""
    order = np.lexsort((start, session_user))
    sorted_user = session_user[order]
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.searchsorted(sorted_user, sorted_user)
    return rank
