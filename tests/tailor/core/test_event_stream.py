"""The Redis event bus: a batch is appended whole and in time, or not at all, so the
API's 503 after a timeout is never contradicted by a late write."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from tailor.core.event_stream import PAYLOAD_FIELD, RedisStreamBus, redis_stream_bus
from tailor.core.events import Event
from tailor.core.settings import TailorSettings
from tests.support.services import PrivateRedis, start_private_redis
from tests.support.waiting import wait_for

KEY = "test:bus"
MOMENT = datetime(2026, 3, 4, 10, tzinfo=UTC)


def events(count: int) -> list[Event]:
    return [
        Event(event_id=f"e{n}", user_id=7, session_id="s", event_type="view", ts=MOMENT)
        for n in range(count)
    ]


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = start_private_redis()
    yield server
    os.kill(server.process.pid, signal.SIGCONT)  # in case a test left it paused
    server.stop()


def settings_for(server: PrivateRedis, tmp_path) -> TailorSettings:
    return TailorSettings(
        home=tmp_path,
        profile="redis",
        servers={"redis_url": server.url, "redis_timeout_seconds": 0.3},
        stream={"stream_key": KEY},
    )


def test_a_batch_is_appended_whole_in_order(private_redis, tmp_path):
    redis_stream_bus(settings_for(private_redis, tmp_path)).publish(events(5))
    entries = private_redis.client().xrange(KEY)
    assert [Event.model_validate_json(fields[PAYLOAD_FIELD]).event_id for _, fields in entries] == [
        f"e{n}" for n in range(5)
    ]


def test_a_batch_that_reaches_redis_after_its_deadline_is_refused_by_redis(private_redis):
    client = private_redis.client()
    bus = RedisStreamBus(client, KEY, deadline_seconds=0.1)
    # Writes (scripts included) wait 0.4 s; TIME does not: the deadline is taken, the
    # append arrives late by Redis's own clock, as after a pause or a slow network.
    client.execute_command("CLIENT", "PAUSE", 400, "WRITE")
    with pytest.raises(redis.ResponseError, match="after its deadline"):
        bus.publish(events(3))
    assert client.xlen(KEY) == 0


def test_a_batch_that_reaches_a_paused_redis_is_refused_when_it_resumes(private_redis, tmp_path):
    bus = redis_stream_bus(settings_for(private_redis, tmp_path))
    bus.publish(events(1))  # connected, script loaded: the next call is one round trip
    os.kill(private_redis.process.pid, signal.SIGSTOP)
    try:
        # Redis holds the request in its socket buffer: the client times out, and it
        # is this failure the API answers 503 for.
        with pytest.raises(redis.TimeoutError):
            bus.publish(events(3))
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)
    client = private_redis.client()
    # Redis now runs the buffered call, past its deadline; a later publish is a marker
    # that it has worked through everything sent before.
    redis_stream_bus(settings_for(private_redis, tmp_path)).publish(events(1))
    wait_for(lambda: client.xlen(KEY) >= 2, "the marker batch")
    assert client.xlen(KEY) == 2, "the timed-out batch was appended after its 503"
