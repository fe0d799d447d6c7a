"""Erasing one user's live session on the redis profile: the state the worker's store
wrote and the user's events still queued in the stream, nobody else's."""

from __future__ import annotations

import json
import uuid

import pytest
import redis

from pipelines.streaming.state_store import RedisSessionStore
from tailor.core.clock import PinnedClock
from tailor.core.event_stream import PAYLOAD_FIELD
from tailor.core.events import Event
from tailor.core.live_sessions import (
    STREAM_SCAN_BATCH,
    RedisSessionEraser,
    SessionsErased,
    SessionStoreUnavailable,
)
from tests.pipelines.streaming.test_session_state import event
from tests.support.flow import CLOCK_START
from tests.support.services import free_port

ERASED, KEPT = 11, 12
QUEUED_EACH = STREAM_SCAN_BATCH + 250  # the stream takes more than one scan to read


def of(user_id: int, n: int) -> Event:
    return event(n, "add_to_cart", n / 60).model_copy(
        update={"user_id": user_id, "event_id": f"u{user_id}-{n}"}
    )


def queued_users(client: redis.Redis, stream: str) -> list[int | None]:
    users = []
    for _, fields in client.xrange(stream):
        try:
            users.append(json.loads(fields[PAYLOAD_FIELD])["user_id"])
        except ValueError:
            users.append(None)
    return users


def test_erasing_takes_one_users_state_and_queued_events_and_nothing_else(private_redis):
    client = private_redis.client()
    prefix = f"erase{uuid.uuid4().hex[:8]}"
    stream = f"{prefix}:events"
    store = RedisSessionStore(client, prefix, 600, 600, PinnedClock(CLOCK_START))
    store.apply([of(ERASED, 0), of(KEPT, 0)])
    pipe = client.pipeline()
    for n in range(QUEUED_EACH):
        for user_id in (ERASED, KEPT):
            pipe.xadd(stream, {PAYLOAD_FIELD: of(user_id, n).model_dump_json()})
    pipe.xadd(stream, {PAYLOAD_FIELD: b"not an event"})
    pipe.execute()
    # One of the erased user's entries is pending: read by a worker, not acknowledged.
    client.xgroup_create(stream, "workers", id="0")
    client.xreadgroup("workers", "w1", {stream: ">"}, count=1)

    eraser = RedisSessionEraser(client, prefix, stream)
    assert eraser.erase(ERASED) == SessionsErased(states=1, queued_events=QUEUED_EACH)

    assert client.get(store.state_key(ERASED)) is None
    assert json.loads(client.get(store.state_key(KEPT)))["cart_events"]
    assert queued_users(client, stream) == [KEPT] * QUEUED_EACH + [None]
    assert eraser.erase(ERASED) == SessionsErased(states=0, queued_events=0)
    # The worker's own store erases under the same key.
    assert (store.erase(KEPT), store.erase(KEPT)) == (1, 0)


def test_a_redis_that_is_down_is_named_and_nothing_is_claimed():
    eraser = RedisSessionEraser(redis.Redis(port=free_port()), "tailor", "tailor:events")
    with pytest.raises(SessionStoreUnavailable, match="Redis"):
        eraser.erase(ERASED)
