"""Per-user session state and the features read off it.

Pure functions over a JSON-able dict, so the Redis store and the in-process store
share every line of the logic and a state can be inspected with `redis-cli GET`.
Windows are measured in event time (up to the user's latest event), so replaying
the same events in any batch split gives the same state. A snapshot is dated when
the state last changed (processing time, strictly increasing per user): late events
then never rewrite the past for training, and Feast's online store, which drops a
write not newer than the stored one, never drops a changed state.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pipelines.events import Event

State = dict[str, Any]
WINDOW_MS = 30 * 60 * 1000  # the "30m" in the feature names


def new_state() -> State:
    return {
        "recent": [],  # [ts_ms, event_type, category] within the window
        "cart": {},  # item_id -> [quantity, unit price]
        "last_cart_ms": None,
        "last_purchase_ms": None,
        "last_event_ms": None,
        "last_category": None,
        "changed_us": 0,  # processing time of the last change, microseconds
    }


def mark_changed(state: State, now_us: int) -> None:
    state["changed_us"] = max(now_us, state["changed_us"] + 1)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def apply_event(state: State, event: Event) -> None:
    """Fold one event into the state (events of a user are applied in time order)."""
    ts = _ms(event.ts)
    state["recent"].append([ts, event.event_type, event.category])
    latest = max(ts, state["last_event_ms"] or ts)
    state["recent"] = [entry for entry in state["recent"] if entry[0] > latest - WINDOW_MS]
    if ts >= latest:
        state["last_event_ms"] = ts
        if event.category is not None:
            state["last_category"] = event.category
    cart: dict[str, list[float]] = state["cart"]
    item = str(event.item_id)
    if event.event_type == "add_to_cart":
        quantity, _ = cart.get(item, [0, 0.0])
        cart[item] = [quantity + 1, event.price or 0.0]
        state["last_cart_ms"] = max(ts, state["last_cart_ms"] or ts)
    elif event.event_type == "remove_from_cart" and item in cart:
        cart[item][0] -= 1
        if cart[item][0] <= 0:
            del cart[item]
    elif event.event_type == "purchase":
        cart.clear()
        state["last_purchase_ms"] = max(ts, state["last_purchase_ms"] or ts)


def session_features(user_id: int, state: State) -> dict[str, Any]:
    """One row of the session feature view, dated when the state last changed."""
    views = Counter(
        category for _, kind, category in state["recent"] if kind == "view" and category
    )
    top = min(views.items(), key=lambda kv: (-kv[1], kv[0])) if views else (None, 0)
    cart = state["cart"]
    open_cart = bool(cart) and (
        state["last_purchase_ms"] is None or state["last_cart_ms"] > state["last_purchase_ms"]
    )
    return {
        "user_id": user_id,
        "event_timestamp": datetime.fromtimestamp(state["changed_us"] / 1_000_000, tz=UTC),
        "session_events_30m": len(state["recent"]),
        "session_views_30m": sum(views.values()),
        "session_category_views_30m": json.dumps(dict(sorted(views.items()))),
        "session_top_category": top[0],
        "session_top_category_views_30m": top[1],
        "cart_items": int(sum(quantity for quantity, _ in cart.values())),
        "cart_value": float(sum(quantity * price for quantity, price in cart.values())),
        "last_unpurchased_cart_epoch_s": state["last_cart_ms"] // 1000 if open_cart else None,
        "last_category": state["last_category"],
        "session_last_event_epoch_s": state["last_event_ms"] // 1000,
    }
