"""Outages rehearsed under load with real servers: the API on the redis profile keeps
answering while its Redis is killed and restarted, and while its decision database
becomes unreachable and comes back; afterwards nothing it accepted is lost or doubled.

The database outage is a TCP relay between the API and PostgreSQL that the test cuts:
the API's sockets break mid-call and its connects are refused, as when the database
host crashes, restarts or fails over. Making PostgreSQL refuse the database instead
(`ALLOW_CONNECTIONS false` and `pg_terminate_backend`) would leave a live server
answering every attempt with a polite protocol error, and would shut the test out
too; the relay cuts only the API's path to the decision database.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, make_url, select

from tailor.core.database.schema import decisions
from tailor.core.settings import StreamSettings, TailorSettings
from tests.support import required
from tests.support.flow import (
    CLOCK_START,
    FLOW_USERS,
    TAILOR,
    Flow,
    Server,
    start_server,
)
from tests.support.load import Exchange, PacedLoad, Post, Recording, recording_client
from tests.support.redis_profile import redis_profile_env
from tests.support.services import PrivateRedis
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for

PERSONALIZE = "/v1/personalize"
EVENTS = "/v1/events"
DECISION_THREADS = 3
PER_THREAD_PER_SECOND = 20.0  # with the event thread: at most 80 requests/s in all
LOAD_LIMIT = 2000  # calls per thread: the bound if the scenario hangs, never reached
OUTAGE_SECONDS = 3.0  # longer than the 2 s breaker: it opens, probes and opens again
SEEN_IN_OUTAGE = 10  # decisions sent and answered inside each outage, at least
WAIT_SECONDS = 30.0  # for the load to have made the requests a phase needs
# Liveness bounds, not latency checks, generous for a loaded 2-core machine.
# The feature reader skips Redis for `serving.feature_breaker_seconds` (2 s) after
# failures, then reads it again: undegraded answers are back well within this.
RESUME_SECONDS = 10.0
# The decision log retries a failing database with a backoff doubling from 0.2 s.
LOGGED_SECONDS = 60.0
# The stream worker reconnects, re-reads its pending entries, flushes every 0.5 s.
DRAINED_SECONDS = 30.0
FEATURE_STORE_DOWN = {"feature_store_unavailable", "feature_store_timeout"}
STREAM = StreamSettings()
PROJECT = TailorSettings.model_fields["project"].default
EVENT_USERS = [9_100_001 + n for n in range(5)]  # not in the flow: only these events
FIRST_EVENT_AT = CLOCK_START - timedelta(minutes=20)  # a 30-min window holds them all


@dataclass
class Stack:
    server: Server
    redis: PrivateRedis
    proxy: TcpProxy
    decisions_url: str  # direct, not through the relay: the test's own view

    def restart_redis(self) -> None:
        self.redis = required.private_redis(self.redis.port, self.redis.data_dir)


def _stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    worker.wait(timeout=20)


@pytest.fixture
def stack(flow: Flow, tmp_path: Path) -> Iterator[Stack]:
    """The flow's marts and model served from a private Redis that persists to disk,
    the decision database behind a relay, and a stream worker."""
    with ExitStack() as cleanup:
        redis_server = required.private_redis(data_dir=tmp_path / "redis")
        cleanup.callback(redis_server.stop)
        registry = cleanup.enter_context(required.scratch_database())
        database = cleanup.enter_context(required.scratch_database())
        url = make_url(database)
        proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
        cleanup.callback(proxy.cut)
        env = redis_profile_env(
            flow,
            tmp_path,
            redis_server.url,
            registry,
            TAILOR_DECISIONS__DATABASE_URL=url.set(port=proxy.port).render_as_string(False),
            TAILOR_STREAM__CLAIM_IDLE_MS="1000",
            TAILOR_STREAM__OFFLINE_FLUSH_SECONDS="0.5",
        )
        worker_log = cleanup.enter_context((tmp_path / "worker.log").open("wb"))
        worker = subprocess.Popen(
            [str(TAILOR), "stream", "--consumer", "rehearsal"],
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        cleanup.callback(_stop, worker)
        server = start_server(env)
        cleanup.callback(server.stop)
        built = Stack(server, redis_server, proxy, database)
        cleanup.callback(lambda: built.redis.stop())  # the one running now
        yield built


def decider(first: int) -> Callable[[Post], object]:
    """The flow's users in turn: they have features, so a healthy answer is personalized
    and names no degraded reason."""
    users = itertools.count(first, DECISION_THREADS)

    def step(post: Post) -> Exchange:
        return post(PERSONALIZE, decision_request(next(users) % FLOW_USERS + 1))

    return step


def decision_request(user_id: int) -> dict[str, Any]:
    context = {"device": "mobile", "country": "DE", "page": "home"}
    return {"user_id": user_id, "placement": "homepage_banner", "context": context}


@dataclass
class EventSender:
    """A client of POST /v1/events: each call posts two new events, or re-posts whole
    the batch the API last refused, as its 503 asks."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    retried: int = 0  # refused batches accepted on a later try
    waiting: list[dict[str, Any]] | None = None
    _sent: int = 0

    def step(self, post: Post) -> None:
        batch = self.waiting or [self._new_event(), self._new_event()]
        if post(EVENTS, batch).status == 200:
            self.accepted.extend(batch)
            self.retried += self.waiting is not None
            self.waiting = None
        else:
            self.waiting = batch

    def _new_event(self) -> dict[str, Any]:
        n = self._sent
        self._sent += 1
        user = EVENT_USERS[n % len(EVENT_USERS)]
        return {
            "event_id": f"rehearsal-{n}",
            "user_id": user,
            "session_id": f"rehearsal-{user}",
            "event_type": "view",
            "category": "sports",
            "item_id": n,
            "device": "mobile",
            "country": "DE",
            "ts": (FIRST_EVENT_AT + timedelta(milliseconds=250 * n)).isoformat(),
        }


def undegraded(exchange: Exchange) -> bool:
    return exchange.status == 200 and exchange.answer["degraded"] == []


def count(recording: Recording, path: str, keep: Callable[[Exchange], bool]) -> int:
    return sum(1 for exchange in recording.exchanges(path) if keep(exchange))


def rehearse(stack: Stack, recording: Recording, sender: EventSender) -> None:
    """Steady load, Redis killed and restarted, the database cut off and back."""

    def decided(phase: str) -> bool:
        return count(recording, PERSONALIZE, lambda e: e.within(phase)) >= SEEN_IN_OUTAGE

    wait_for(
        lambda: (
            count(recording, PERSONALIZE, undegraded) >= SEEN_IN_OUTAGE
            and len(sender.accepted) >= 4
        ),
        "undegraded decisions and accepted events under steady load",
        WAIT_SECONDS,
    )
    stack.redis.kill()
    recording.enter("redis_down")
    time.sleep(OUTAGE_SECONDS)  # the outage's length: the scenario, not a wait for work
    wait_for(
        lambda: (
            decided("redis_down") and count(recording, EVENTS, lambda e: e.within("redis_down"))
        ),
        "decisions and events sent and answered while Redis was dead",
        WAIT_SECONDS,
    )
    recording.enter("redis_restarting")  # it may answer before `restart_redis` returns
    stack.restart_redis()
    recording.enter("redis_back")
    wait_for(
        lambda: count(
            recording, PERSONALIZE, lambda e: e.sent_in == "redis_back" and undegraded(e)
        ),
        "an undegraded decision after Redis came back (liveness bound)",
        RESUME_SECONDS,
    )
    wait_for(
        lambda: sender.waiting is None and sender.retried,
        "the events refused during the outage to be accepted on retry (liveness bound)",
        RESUME_SECONDS,
    )
    stack.proxy.cut()
    recording.enter("db_down")
    with pytest.raises(ConnectionRefusedError):  # the relay is really cut
        socket.create_connection(("127.0.0.1", stack.proxy.port), timeout=5)
    time.sleep(OUTAGE_SECONDS)
    wait_for(lambda: decided("db_down"), "decisions while the database was cut off", WAIT_SECONDS)
    stack.proxy.mend()
    recording.enter("db_back")
    wait_for(lambda: decided("db_back"), "decisions after the database came back", WAIT_SECONDS)


def test_outages_under_load_lose_nothing_and_double_nothing(stack: Stack) -> None:
    recording = Recording("steady")
    sender = EventSender()
    steps = [decider(first) for first in range(DECISION_THREADS)] + [sender.step]
    with PacedLoad(stack.server.url, recording, steps, PER_THREAD_PER_SECOND, LOAD_LIMIT) as load:
        rehearse(stack, recording, sender)
        load.stop()

    answered = recording.exchanges(PERSONALIZE)
    failed = [e for e in answered if e.status != 200]
    assert not failed, (
        f"{len(failed)} of {len(answered)} decision requests were not answered 200 "
        f"({Counter(e.status for e in failed)}); first: {failed[0]}"
    )
    in_redis_outage = [e for e in answered if e.within("redis_down")]
    not_flagged = [e for e in in_redis_outage if not FEATURE_STORE_DOWN & set(e.answer["degraded"])]
    assert not not_flagged, (
        f"{len(not_flagged)} of {len(in_redis_outage)} decisions made while Redis was dead "
        f"do not say so in `degraded`; first: {not_flagged[0].answer['degraded']}"
    )

    posted = recording.exchanges(EVENTS)
    unexpected = [e for e in posted if e.status not in (200, 503)]
    assert not unexpected, f"event posts answered neither 200 nor 503: {unexpected[:3]}"
    in_outage = [e for e in posted if e.within("redis_down")]
    accepted_in_outage = [e for e in in_outage if e.status != 503]
    assert not accepted_in_outage, (
        f"{len(accepted_in_outage)} of {len(in_outage)} event batches posted while Redis "
        f"was dead were not refused with 503: {accepted_in_outage[:3]}"
    )
    partial = [e for e in posted if e.status == 200 and e.answer["accepted"] != len(e.sent)]
    assert not partial, f"batches accepted in part: {partial[:3]}"

    redis_client = stack.redis.client()
    wait_for(
        lambda: drained(redis_client),
        "the stream worker to apply and acknowledge every entry",
        DRAINED_SECONDS,
    )
    assert_each_event_counted_once(stack, recording, sender.accepted)
    assert_every_decision_logged(stack, recording)


def drained(client: redis.Redis) -> bool:
    """Every entry delivered to the worker's group and acknowledged (so applied)."""
    last = client.xinfo_stream(STREAM.stream_key)["last-generated-id"]
    group = next(
        g for g in client.xinfo_groups(STREAM.stream_key) if g["name"].decode() == STREAM.group
    )
    return group["last-delivered-id"] == last and group["pending"] == 0


def assert_each_event_counted_once(
    stack: Stack, recording: Recording, accepted: list[dict[str, Any]]
) -> None:
    """Each accepted event id is marked applied once, and each user's live session
    counts exactly the events accepted for them, re-posted ones included once."""
    client = stack.redis.client()
    # The worker's idempotence marks: one hash field per applied event id, in hashes
    # named `<project>:seen:<slice>` (`pipelines.streaming.state_store.dedup_buckets`).
    marks = Counter(
        key.decode()
        for bucket in client.scan_iter(match=f"{PROJECT}:seen:*")
        for key in client.hkeys(bucket)
    )
    ids = Counter(event["event_id"] for event in accepted)
    assert max(ids.values()) == 1, "the sender accepted an event twice: a bug of this test"
    assert marks == ids, (
        f"the stream worker's applied events differ from those the API accepted: "
        f"{len(set(ids) - set(marks))} never applied, {len(set(marks) - set(ids))} unknown, "
        f"{sum(1 for n in marks.values() if n > 1)} marked twice"
    )
    post, client_http = recording_client(stack.server.url, recording, timeout=30)
    with client_http:
        for user in EVENT_USERS:
            expected = sum(1 for event in accepted if event["user_id"] == user)
            decision = post(PERSONALIZE, decision_request(user))
            assert decision.status == 200, decision
            counted = decision.answer["signals"]["session_events_30m"]
            assert counted == expected, (
                f"user {user}'s session counts {counted} events, the API accepted {expected}"
            )


def assert_every_decision_logged(stack: Stack, recording: Recording) -> None:
    returned = {e.answer["decision_id"] for e in recording.exchanges(PERSONALIZE)}
    in_db_outage = [e for e in recording.exchanges(PERSONALIZE) if e.within("db_down")]
    engine = create_engine(stack.decisions_url)
    try:

        def logged() -> set[str]:
            with engine.connect() as connection:
                return set(connection.execute(select(decisions.c.decision_id)).scalars())

        wait_for(
            lambda: returned <= logged(),
            f"the {len(returned)} decisions answered ({len(in_db_outage)} while the "
            f"database was cut off) to reach {decisions.name}",
            LOGGED_SECONDS,
        )
        assert logged() == returned, "the decision log holds decisions no request was answered"
    finally:
        engine.dispose()
