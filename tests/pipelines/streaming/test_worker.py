"""Stream workers on a real Redis with Feast's Redis online store and PostgreSQL registry."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from datetime import datetime, timedelta

import pandas as pd

from feature_repo.store import open_store
from pipelines.streaming.state_store import RedisSessionStore
from pipelines.streaming.wiring import session_processor
from pipelines.streaming.worker import StreamWorker
from tailor.core.clients import redis_client
from tailor.core.event_stream import redis_stream_bus
from tailor.core.events import Event
from tailor.core.settings import TailorSettings
from tests.support.flow import CLOCK_START, TAILOR, Flow
from tests.support.waiting import wait_for

USERS = 300
EVENTS_PER_USER = 20  # 14 views, 4 carts, 2 removes: all inside one 30-minute window


def settings_for(flow: Flow, stream_key: str) -> TailorSettings:
    return flow.settings(
        stream={"stream_key": stream_key, "claim_idle_ms": 1000, "offline_flush_seconds": 0.5}
    )


def user_events(user_id: int, start: datetime) -> list[Event]:
    kinds = ["view"] * 14 + ["add_to_cart"] * 4 + ["remove_from_cart"] * 2
    return [
        Event(
            event_id=f"u{user_id}-{n}",
            user_id=user_id,
            session_id=f"s{user_id}",
            event_type=kind,
            item_id=n % 4 if kind != "view" else n,
            category=("books", "toys")[n % 2],
            price=10.0,
            device="desktop",
            country="US",
            ts=start + timedelta(seconds=30 * n),
        )
        for n, kind in enumerate(kinds)
    ]


def expected_cart_items() -> int:
    # carts at n = 14..17 add items 2,3,0,1; removes at n = 18, 19 drop items 2 and 3
    return 2


def stream_done(client, key: str, group: str) -> bool:
    groups = {g["name"].decode(): g for g in client.xinfo_groups(key)}
    info = groups.get(group)
    return bool(info) and info["pending"] == 0 and info["lag"] == 0


def online_session_rows(settings: TailorSettings, users: list[int]) -> dict[str, list]:
    store = open_store(settings)
    return store.get_online_features(
        features=[
            "session_activity:session_events_30m",
            "session_activity:session_views_30m",
            "session_activity:cart_items",
        ],
        entity_rows=[{"user_id": user} for user in users],
    ).to_dict()


def start_worker(flow: Flow, key: str, name: str, batch_size: int) -> subprocess.Popen:
    env = {
        **flow.env,
        "TAILOR_STREAM__STREAM_KEY": key,
        "TAILOR_STREAM__BATCH_SIZE": str(batch_size),
    }
    return subprocess.Popen(
        [str(TAILOR), "stream", "--consumer", name],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_worker_killed_mid_batch_loses_nothing_and_counts_nothing_twice(redis_flow):
    key = "test:crash"
    settings = settings_for(redis_flow, key)
    client = redis_client(settings)
    start = CLOCK_START - timedelta(minutes=15)
    users = list(range(900_001, 900_001 + USERS))
    events = [event for user in users for event in user_events(user, start)]
    bus = redis_stream_bus(settings)
    for offset in range(0, len(events), 1000):
        bus.publish(events[offset : offset + 1000])
    group = settings.stream.group

    doomed = start_worker(redis_flow, key, "doomed", batch_size=50)

    def group_has_read_some() -> bool:
        groups = client.xinfo_groups(key) if client.exists(key) else []
        return any(g["entries-read"] and g["entries-read"] >= 500 for g in groups)

    wait_for(group_has_read_some, "the first worker to start reading", 60)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    assert not stream_done(client, key, group), "the first worker finished before it was killed"

    rescuer = start_worker(redis_flow, key, "rescuer", batch_size=500)

    def consumers() -> set[str]:
        return {consumer["name"].decode() for consumer in client.xinfo_consumers(key, group)}

    try:
        wait_for(lambda: stream_done(client, key, group), "the stream to be drained", 120)
        # The dead worker's entries were claimed; its trim pass then removes its name.
        wait_for(lambda: consumers() == {"rescuer"}, "the dead consumer to be removed", 60)
    finally:
        rescuer.send_signal(signal.SIGTERM)
        rescuer.wait(timeout=30)
    assert consumers() == set(), "a cleanly stopped worker leaves the group"

    rows = online_session_rows(settings, users)
    assert rows["session_events_30m"] == [EVENTS_PER_USER] * USERS
    assert rows["session_views_30m"] == [14] * USERS
    assert rows["cart_items"] == [expected_cart_items()] * USERS
    states = [
        client.get(RedisSessionStore(client, settings.project, 60, 60, settings.clock).state_key(u))
        for u in users
    ]
    assert all(len(json.loads(state)["recent"]) == EVENTS_PER_USER for state in states)
    # Training sees what serving saw: the offline log (one part per flush) has the same rows.
    # Rows are dated by the workers' clocks, pinned to CLOCK_START when they started.
    entities = pd.DataFrame({"user_id": users, "event_timestamp": CLOCK_START + timedelta(hours=1)})
    history = (
        open_store(settings)
        .get_historical_features(
            entity_df=entities,
            features=["session_activity:session_events_30m", "session_activity:cart_items"],
        )
        .to_df()
        .sort_values("user_id")
    )
    assert history["session_events_30m"].tolist() == [EVENTS_PER_USER] * USERS
    assert history["cart_items"].tolist() == [expected_cart_items()] * USERS
    assert len(list(settings.session_log_dir.glob("part-rescuer-*.parquet"))) >= 1
    # Trimmed only past what the group acknowledged: at most the last delivered entry stays.
    worker = StreamWorker(
        client, settings.stream, session_processor(settings, open_store(settings), "t"), "t"
    )
    worker.trim()
    assert client.xlen(key) <= 1


def test_entries_are_acknowledged_only_after_the_push(redis_flow):
    key = "test:ack"
    settings = settings_for(redis_flow, key)
    client = redis_client(settings)
    store = open_store(settings)
    processor = session_processor(settings, store, "acker")
    pushes = []
    original = processor.pusher.push_online

    def failing_push(rows):
        pushes.append(len(rows))
        if len(pushes) == 1:
            raise ConnectionError("online store went away")
        original(rows)

    processor.pusher.push_online = failing_push
    worker = StreamWorker(client, settings.stream, processor, "acker")
    worker.ensure_group()
    redis_stream_bus(settings).publish(user_events(950_001, CLOCK_START))

    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    wait_for(lambda: stream_done(client, key, settings.stream.group), "the retry to succeed", 30)
    stop.set()
    thread.join(timeout=30)
    assert len(pushes) >= 2  # the failed push was retried, not acknowledged
    rows = online_session_rows(settings, [950_001])
    assert rows["session_events_30m"] == [EVENTS_PER_USER]


def test_an_entry_that_is_not_an_event_goes_to_the_dead_letters(redis_flow):
    key = "test:dead"
    settings = settings_for(redis_flow, key)
    client = redis_client(settings)
    worker = StreamWorker(
        client, settings.stream, session_processor(settings, open_store(settings), "d"), "d"
    )
    worker.ensure_group()
    client.xadd(key, {b"e": b'{"event_id": "x"}'})
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: client.xlen(f"{key}:dead") == 1, "the dead letter", 10)
        wait_for(lambda: stream_done(client, key, settings.stream.group), "the ack", 10)
    finally:
        stop.set()
        thread.join(timeout=30)


def test_a_restarted_worker_rereads_each_of_its_pending_entries_once(redis_flow):
    key = "test:reread"
    settings = redis_flow.settings(
        stream={"stream_key": key, "batch_size": 10, "offline_flush_seconds": 600}
    )
    client = redis_client(settings)
    bus = redis_stream_bus(settings)
    batches: list[list[str]] = []
    worker = StreamWorker(
        client,
        settings.stream,
        session_processor(settings, open_store(settings), "r"),
        "r",
        on_batch=lambda batch: batches.append(batch.event_ids),
    )
    worker.ensure_group()
    moment = CLOCK_START
    bus.publish(user_events(960_001, moment) + user_events(960_002, moment)[:15])
    # The worker's previous life read these 35 and died before acknowledging them.
    client.xreadgroup(settings.stream.group, "r", {key: ">"}, count=35)
    bus.publish(user_events(960_100, moment)[:5])

    for _ in range(6):  # 4 re-reads, 1 that finds no more pending, 1 read of new entries
        worker.step()

    assert [len(batch) for batch in batches] == [10, 10, 10, 5, 5]
    assert len({event_id for batch in batches for event_id in batch}) == 40
    assert all(event_id.startswith("u960100-") for event_id in batches[-1])
