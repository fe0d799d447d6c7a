"""POST /v1/events on both profiles: validation per event, and the next decision sees them."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta

import pytest

from tests.support.flow import (
    CLOCK_START,
    TAILOR,
    Flow,
    Server,
    run_tailor,
    start_server,
    tailor_env,
)
from tests.support.services import free_port

LIVE_USER = 4242424


# Events a minute or less before the decisions that read them.
EVENTS_BEFORE = CLOCK_START
DECIDED_AT = CLOCK_START + timedelta(minutes=1)


def live_events(user_id: int, prefix: str) -> list[dict]:
    now = EVENTS_BEFORE
    base = {"user_id": user_id, "session_id": f"{prefix}-s", "device": "mobile", "country": "DE"}

    def at(seconds_ago: int, n: int, kind: str, category: str, **extra) -> dict:
        return base | {
            "event_id": f"{prefix}-{n}",
            "event_type": kind,
            "category": category,
            "item_id": extra.get("item_id", n),
            "price": extra.get("price", 20.0),
            "ts": (now - timedelta(seconds=seconds_ago)).isoformat(),
        }

    return [
        at(60, 1, "view", "sports"),
        at(50, 2, "view", "sports"),
        at(40, 3, "view", "books"),
        at(30, 4, "add_to_cart", "sports", item_id=77, price=30.0),
        at(20, 5, "add_to_cart", "sports", item_id=78, price=12.5),
    ]


def post_batch_with_one_bad_event(server: Server, user_id: int, prefix: str) -> dict:
    events = live_events(user_id, prefix)
    bad = dict(events[2], event_id=f"{prefix}-bad", event_type="wishlist")
    with server.client() as client:
        response = client.post("/v1/events", json=[*events[:2], bad, *events[2:]])
    assert response.status_code == 200, response.text
    return response.json()


def decide_until(server: Server, user_id: int, predicate, timeout: float = 30.0) -> dict:
    """The worker the fixture just started may still be importing (over 10 s on a loaded
    2-core machine) when the first events arrive: wait for it, not for a guess."""
    deadline = time.monotonic() + timeout
    body = {
        "user_id": user_id,
        "placement": "homepage_banner",
        "context": {"device": "mobile", "country": "DE", "timestamp": DECIDED_AT.isoformat()},
    }
    while True:
        with server.client() as client:
            decision = client.post("/v1/personalize", json=body).json()
        if predicate(decision) or time.monotonic() > deadline:
            return decision
        time.sleep(0.05)


def assert_session_visible(decision: dict) -> None:
    signals = decision["signals"]
    assert signals["session_top_category"] == "sports", decision
    assert signals["session_events_30m"] == 5
    assert signals["cart_items"] == 2
    assert signals["cart_value"] == pytest.approx(42.5)
    assert 0 <= signals["minutes_since_cart_abandoned"] < 5
    sports = next(c for c in decision["candidates"] if c["variant_id"] == "sports_gear")
    assert sports["components"]["behavioral"] > 0.5


def test_embedded_batch_keeps_the_valid_events_and_names_the_bad_one(api):
    report = post_batch_with_one_bad_event(api, LIVE_USER, "emb")
    assert (report["accepted"], report["rejected"]) == (5, 1)
    assert report["errors"] == [
        {"index": 2, "field": "event_type", "message": report["errors"][0]["message"]}
    ]
    assert "view" in report["errors"][0]["message"]
    decision = decide_until(api, LIVE_USER, lambda d: d["signals"]["cart_items"] == 2)
    assert_session_visible(decision)
    assert decision["degraded"] == []


def test_reposting_the_same_events_counts_nothing_twice(api):
    events = live_events(LIVE_USER + 1, "dup")
    with api.client() as client:
        for _ in range(2):
            assert client.post("/v1/events", json=events).json()["accepted"] == 5
    decision = decide_until(api, LIVE_USER + 1, lambda d: d["signals"]["cart_items"] == 2)
    assert decision["signals"]["session_events_30m"] == 5
    assert decision["signals"]["cart_items"] == 2


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"event_id": "x"}, 422, "user_id"),
        ([{**live_events(1, "v")[0], "ts": "2026-11-01T10:00:00"}], 422, "ts"),
        ([{**live_events(1, "v")[0], "price": -1}], 422, "price"),
        ([{**live_events(1, "v")[0], "ts": "2099-01-01T00:00:00+00:00"}], 422, "ts"),
        ([{**live_events(1, "v")[0], "ts": "0001-01-01T00:30:00+01:00"}], 422, "ts"),
        ([{**live_events(1, "v")[0], "user_id": "abc"}], 422, "user_id"),
    ],
)
def test_a_batch_with_no_valid_event_is_a_422_naming_the_field(api, payload, status, field):
    with api.client() as client:
        response = client.post("/v1/events", json=payload)
    assert response.status_code == status
    body = response.json()
    assert body["accepted"] == 0
    assert field in {error["field"] for error in body["errors"]}


def test_an_oversized_batch_is_refused_whole(api):
    events = [dict(live_events(1, "big")[0], event_id=f"big-{n}") for n in range(10_001)]
    with api.client() as client:
        response = client.post("/v1/events", json=events)
    assert response.status_code == 413
    assert "at most 10000" in response.json()["detail"]


@pytest.fixture(scope="module")
def redis_api(redis_flow: Flow):
    server = start_server(redis_flow.env)
    worker = subprocess.Popen([str(TAILOR), "stream", "--consumer", "api-test"], env=redis_flow.env)
    yield server
    worker.terminate()
    worker.wait(timeout=20)
    server.stop()


def test_redis_profile_event_is_visible_in_the_next_decision(redis_api):
    report = post_batch_with_one_bad_event(redis_api, LIVE_USER, "red")
    assert (report["accepted"], report["rejected"]) == (5, 1)
    assert report["errors"][0]["index"] == 2
    decision = decide_until(redis_api, LIVE_USER, lambda d: d["signals"]["cart_items"] == 2)
    assert_session_visible(decision)
    assert decision["degraded"] == []


def test_with_redis_down_events_are_refused_and_decisions_fall_back(redis_flow, tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    server = start_server({**redis_flow.env, "TAILOR_SERVERS__REDIS_URL": dead})
    try:
        with server.client() as client:
            events = client.post("/v1/events", json=live_events(LIVE_USER, "down"))
            decision = client.post(
                "/v1/personalize",
                json={
                    "user_id": 1,
                    "placement": "homepage_banner",
                    "context": {"device": "mobile", "country": "DE"},
                },
            )
    finally:
        server.stop()
    assert events.status_code == 503
    assert "none of the events was accepted" in events.json()["detail"]
    assert decision.status_code == 200
    body = decision.json()
    # A refused connection may fail fast or outlast the 100 ms budget: either way, fallback.
    assert {"feature_store_unavailable", "feature_store_timeout"} & set(body["degraded"])
    assert body["variant"]["id"] == "welcome"


def test_tailor_stream_refuses_the_embedded_profile(tmp_path):
    result = run_tailor(tailor_env(tmp_path), "stream")
    assert result.returncode == 1
    assert "TAILOR_PROFILE=redis" in result.stdout
