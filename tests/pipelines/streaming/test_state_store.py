"""The Redis session store's idempotence, against a private redis-server."""

from __future__ import annotations

import json
import uuid

import pytest

from pipelines.streaming.session_state import cart_of
from pipelines.streaming.state_store import DEDUP_SLICES, RedisSessionStore, dedup_buckets
from tailor.core.clock import PinnedClock
from tests.pipelines.streaming.test_session_state import event
from tests.support.flow import CLOCK_START

TTL = 86_400
CLOCK = PinnedClock(CLOCK_START)


@pytest.fixture
def store(private_redis) -> RedisSessionStore:
    return RedisSessionStore(private_redis.client(), f"t{uuid.uuid4().hex[:8]}", 600, TTL, CLOCK)


@pytest.mark.parametrize("ttl", [TTL, 100])  # 100 s: not a multiple of the slices
@pytest.mark.parametrize("applied_at", [1_700_000_000.0, 1_700_003_599.9, 1_700_003_600.0])
def test_an_id_stays_remembered_for_the_whole_window_and_its_hash_no_longer(applied_at, ttl):
    buckets, expires_at = dedup_buckets("p", ttl, applied_at)
    written_to = buckets[-1]
    assert applied_at + ttl <= expires_at <= applied_at + ttl * (1 + 1 / DEDUP_SLICES) + 1
    for later in (applied_at, applied_at + ttl / 2, applied_at + ttl):
        assert written_to in dedup_buckets("p", ttl, later)[0]
    assert written_to not in dedup_buckets("p", ttl, expires_at)[0]


def test_a_redelivered_batch_changes_nothing_and_only_new_events_count(store):
    first = [event(1, "add_to_cart", 0), event(2, "view", 1)]
    assert cart_of(store.apply(first)[7])[0] == {"1": [1, 10.0]}
    again = store.apply([*first, event(3, "add_to_cart", 2)])[7]
    assert cart_of(again)[0] == {"1": [2, 10.0]}
    assert len(again["recent"]) == 3
    assert cart_of(store.apply([event(3, "add_to_cart", 2)])[7])[0] == {"1": [2, 10.0]}


def test_two_workers_applying_the_same_events_count_them_once(private_redis):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    workers = [RedisSessionStore(private_redis.client(), prefix, 600, TTL, CLOCK) for _ in range(2)]
    batch = [event(n, "add_to_cart", n, item_id=n) for n in range(20)]
    workers[0].apply(batch[:15])
    state = workers[1].apply(batch[5:])[7]
    assert sum(quantity for quantity, _ in cart_of(state)[0].values()) == 20
    assert len(state["recent"]) == 20


def test_a_state_stored_by_the_previous_release_keeps_its_cart(store, private_redis):
    old = {
        "recent": [],
        "cart": {"4": [2, 12.5]},
        "last_cart_ms": 1_780_000_000_000,
        "last_purchase_ms": None,
        "last_event_ms": 1_780_000_000_000,
        "last_category": "books",
        "changed_us": 1,
    }
    private_redis.client().set(store.state_key(7), json.dumps(old))
    state = store.apply([event(1, "add_to_cart", 0, item_id=5, price=1.0)])[7]
    assert cart_of(state)[0] == {"4": [2, 12.5], "5": [1, 1.0]}
