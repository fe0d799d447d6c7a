"""Per-user session state and the features read off it.

Pure functions over a JSON-able dict, so the Redis store and the in-process store
share every line of the logic and a state can be inspected with `redis-cli GET`.
Windows are measured in event time (up to the user's latest event), and the cart is
replayed from its events in event time, so the same events in any batch split and any
arrival order give the same state (two workers can commit a user's batches in either
order). A snapshot is dated when the state last changed (processing time, strictly
increasing per user): late events then never rewrite the past for training, and
Feast's online store, which drops a write not newer than the stored one, never drops
a changed state.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Protocol

State = dict[str, Any]
WINDOW_MS = 30 * 60 * 1000  # the "30m" in the feature names
MAX_CART_EVENTS = 500  # per user since the last purchase; beyond it the oldest drop


class EventFacts(Protocol):
    """What the fold reads of an event: a live `Event` has it, and so has the history
    backfill's lighter row (building half a million pydantic models would cost more
    than the fold itself)."""

    @property
    def event_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def item_id(self) -> int | None: ...
    @property
    def category(self) -> str | None: ...
    @property
    def price(self) -> float | None: ...
    @property
    def ts(self) -> datetime: ...


def new_state() -> State:
    return {
        "recent": [],  # [ts_ms, event_type, category] within the window
        "cart_events": [],  # [ts_ms, event_type, item_id, price] since the last purchase
        "last_purchase_ms": None,
        "last_event_ms": None,
        "last_category": None,
        "changed_us": 0,  # processing time of the last change, microseconds
    }


def restored(stored: State) -> State:
    """A state as an earlier release stored it, brought up to date.

    Until 2026-11-26 the cart was kept as item -> [quantity, price] with the time of
    the latest add; it becomes that many adds at that time. Can go once no state older
    than that remains (`stream.state_ttl_seconds` after the upgrade).
    """
    if "cart_events" not in stored:
        added_ms = stored.pop("last_cart_ms", None) or stored.get("last_event_ms") or 0
        stored["cart_events"] = sorted(
            [added_ms, "add_to_cart", item, price]
            for item, (quantity, price) in stored.pop("cart", {}).items()
            for _ in range(int(quantity))
        )
    return stored


def mark_changed(state: State, now_us: int) -> None:
    state["changed_us"] = max(now_us, state["changed_us"] + 1)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def apply_event(state: State, event: EventFacts) -> None:
    """Fold one event into the state (events of a user are applied in time order)."""
    ts = _ms(event.ts)
    state["recent"].append([ts, event.event_type, event.category])
    latest = max(ts, state["last_event_ms"] or ts)
    state["recent"] = [entry for entry in state["recent"] if entry[0] > latest - WINDOW_MS]
    if ts >= latest:
        state["last_event_ms"] = ts
        if event.category is not None:
            state["last_category"] = event.category
    purchased = state["last_purchase_ms"]
    if event.event_type in ("add_to_cart", "remove_from_cart"):
        if purchased is None or ts > purchased:  # else the purchase already emptied it
            entry = [ts, event.event_type, str(event.item_id), event.price or 0.0]
            bisect.insort(state["cart_events"], entry)
            del state["cart_events"][:-MAX_CART_EVENTS]
    elif event.event_type == "purchase" and (purchased is None or ts > purchased):
        state["last_purchase_ms"] = ts
        state["cart_events"] = [entry for entry in state["cart_events"] if entry[0] > ts]


def cart_of(state: State) -> tuple[dict[str, list[float]], int | None]:
    """Item -> [quantity, unit price] after the last purchase, and the time of the
    latest add-to-cart still in it (None for an empty cart)."""
    cart: dict[str, list[float]] = {}
    last_add = None
    for ts, kind, item, price in state["cart_events"]:
        if kind == "add_to_cart":
            cart[item] = [cart.get(item, [0, 0.0])[0] + 1, price]
            last_add = ts
        elif item in cart:
            cart[item][0] -= 1
            if cart[item][0] <= 0:
                del cart[item]
    return cart, last_add if cart else None


def session_features(user_id: int, state: State) -> dict[str, Any]:
    """One row of the session feature view, dated when the state last changed."""
    views = Counter(
        category for _, kind, category in state["recent"] if kind == "view" and category
    )
    top = min(views.items(), key=lambda kv: (-kv[1], kv[0])) if views else (None, 0)
    cart, last_add = cart_of(state)
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
        "last_unpurchased_cart_epoch_s": last_add // 1000 if last_add is not None else None,
        "last_category": state["last_category"],
        "session_last_event_epoch_s": state["last_event_ms"] // 1000,
    }
