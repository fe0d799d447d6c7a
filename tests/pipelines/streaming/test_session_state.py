"""Session state and features: exact values for known event sequences."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

from feature_repo.feature_views import session_activity
from pipelines.streaming.feature_push import SESSION_LOG_SCHEMA
from pipelines.streaming.session_state import (
    apply_event,
    mark_changed,
    new_state,
    session_features,
)
from tailor.core.events import Event

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
PROCESSED_US = int(datetime(2026, 6, 1, 13, tzinfo=UTC).timestamp() * 1_000_000)


def event(n: int, kind: str, minutes: float, category: str | None = "books", **extra) -> Event:
    return Event(
        event_id=f"e{n}",
        user_id=7,
        session_id="s",
        event_type=kind,
        item_id=extra.pop("item_id", 1),
        category=category,
        price=extra.pop("price", 10.0),
        ts=T0 + timedelta(minutes=minutes),
        **extra,
    )


def features_after(events: list[Event]) -> dict:
    state = new_state()
    for item in events:
        apply_event(state, item)
    mark_changed(state, PROCESSED_US)
    return session_features(7, state)


def test_windowed_counts_and_top_category():
    row = features_after(
        [
            event(1, "view", 0, "toys"),  # falls out: 30 min before the last event
            event(2, "view", 1, "books"),
            event(3, "view", 2, "books"),
            event(4, "view", 3, "toys"),
            event(5, "add_to_cart", 30, "books", item_id=9, price=25.0),
        ]
    )
    assert row["session_events_30m"] == 4
    assert row["session_views_30m"] == 3
    assert json.loads(row["session_category_views_30m"]) == {"books": 2, "toys": 1}
    assert (row["session_top_category"], row["session_top_category_views_30m"]) == ("books", 2)
    assert row["event_timestamp"] == datetime(2026, 6, 1, 13, tzinfo=UTC)  # processing time
    assert row["session_last_event_epoch_s"] == int((T0 + timedelta(minutes=30)).timestamp())
    assert row["last_category"] == "books"


def test_cart_items_value_and_abandonment():
    added = [
        event(1, "add_to_cart", 0, item_id=1, price=10.0),
        event(2, "add_to_cart", 1, item_id=1, price=10.0),
        event(3, "add_to_cart", 2, item_id=2, price=5.5),
        event(4, "remove_from_cart", 3, item_id=1),
    ]
    row = features_after(added)
    assert (row["cart_items"], row["cart_value"]) == (2, 15.5)
    assert row["last_unpurchased_cart_epoch_s"] == int((T0 + timedelta(minutes=2)).timestamp())
    bought = features_after([*added, event(5, "purchase", 4, item_id=2, price=5.5)])
    assert (bought["cart_items"], bought["cart_value"]) == (0, 0.0)
    assert bought["last_unpurchased_cart_epoch_s"] is None


def test_the_cart_is_the_same_whatever_order_its_events_arrive_in():
    events = [
        event(1, "add_to_cart", 0, item_id=1, price=10.0),
        event(2, "add_to_cart", 1, item_id=2, price=4.0),
        event(3, "remove_from_cart", 2, item_id=1),
        event(4, "purchase", 3, item_id=2),
        event(5, "add_to_cart", 4, item_id=3, price=7.0),
        event(6, "remove_from_cart", 5, item_id=3),  # its item's add is also after the purchase
    ]
    in_time_order = features_after(events)
    assert (in_time_order["cart_items"], in_time_order["cart_value"]) == (0, 0.0)
    added_last = int((T0 + timedelta(minutes=4)).timestamp())
    for order in itertools.permutations(range(6)):
        shuffled = features_after([events[i] for i in order])
        assert shuffled == in_time_order, order
        without_last = features_after([events[i] for i in order if i != 5])
        assert (without_last["cart_items"], without_last["cart_value"]) == (1, 7.0), order
        assert without_last["last_unpurchased_cart_epoch_s"] == added_last, order


def test_top_category_ties_break_alphabetically_and_late_events_count():
    row = features_after(
        [event(1, "view", 5, "toys"), event(2, "view", 4, "books")]  # second arrives late
    )
    assert row["session_top_category"] == "books"
    assert row["last_category"] == "toys"  # the latest in event time, not arrival


def test_snapshot_time_strictly_increases_even_if_the_clock_does_not():
    state = new_state()
    mark_changed(state, 1_000)
    mark_changed(state, 900)  # another worker with a slower clock
    assert state["changed_us"] == 1_001


def test_a_snapshot_has_exactly_the_columns_of_the_session_view():
    """The offline log's schema is generated from the feature view; a snapshot must fill
    every column of it, and nothing else, or rows would be lost or misread."""
    row = features_after([event(1, "view", 0), event(2, "add_to_cart", 1)])
    assert list(row) == SESSION_LOG_SCHEMA.names
    assert SESSION_LOG_SCHEMA.names[2:] == [f.name for f in session_activity.features]
