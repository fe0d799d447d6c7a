"""Consent end to end on a real API: a user with features, a live session, decisions,
outcomes, shadow decisions, an assignment and a trigger is erased with DELETE
/v1/users/{id}; then every store is read directly (the online store through Feast, the
session state, each decision-database table) and nothing of that user is left, while
another user's data is untouched. Their later events are dropped and counted.

Both profiles: embedded (SQLite everywhere, sessions in the API process) and redis
(private Redis, Feast's registry and the decision log on scratch PostgreSQL, a stream
worker).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import redis
from sqlalchemy import Engine, func, select

from feature_repo.store import open_store
from tailor.core.database.engine import database_engine
from tailor.core.database.schema import (
    assignments,
    decisions,
    opt_outs,
    outcomes,
    shadow_decisions,
    trigger_outbox,
)
from tailor.core.live_sessions import session_state_key
from tailor.core.settings import TailorSettings
from tests.support import required
from tests.support.engines import banner_placements
from tests.support.flow import CLOCK_START, TAILOR, Flow, Server, start_server
from tests.support.services import free_port
from tests.support.waiting import wait_for

ADMIN = {"X-API-Key": "erasure-admin-key"}
EVENTS_AT = CLOCK_START - timedelta(minutes=2)
DECIDED_AT = CLOCK_START
ARMS = [
    {"key": "champion"},
    {
        "key": "taste_first",
        "shadow": True,
        "policy": {"weights": {"behavioral": 0.8, "contextual": 0.1, "predictive": 0.1}},
    },
]
FEATURES = ["user_behavior:sessions_30d", "session_activity:cart_items"]
TABLES = ("decisions", "outcomes", "shadow_decisions", "assignments", "trigger_outbox")


def users_with_history(flow: Flow) -> tuple[int, int, int]:
    """The three highest ids with materialized features: no other test reads them."""
    marts = flow.settings().marts_dir / "user_daily_features.parquet"
    rows = duckdb.sql(
        f"SELECT DISTINCT user_id FROM read_parquet('{marts}') ORDER BY user_id DESC LIMIT 3"
    ).fetchall()
    erased, kept, kept_consent = (row[0] for row in rows)
    return erased, kept, kept_consent


def placements(home: Path, users: tuple[int, ...]) -> Path:
    """An experiment (assignments) with a shadow arm (shadow decisions), and a trigger
    that fires for the test's users (outbox rows)."""
    trigger = {
        "id": "hello_erasure_users",
        "priority": 5,
        "when": f"user_id in {list(users)}",
        "action": {"type": "trigger", "notification": "hello", "once_per": "24h"},
    }
    return banner_placements(home / "placements.yaml", ARMS, rules=(trigger,))


def events(user_id: int, prefix: str, count: int = 5) -> list[dict[str, Any]]:
    kinds = ["view", "view", "view", "add_to_cart", "add_to_cart"]
    return [
        {
            "event_id": f"{prefix}-{user_id}-{n}",
            "user_id": user_id,
            "session_id": f"{prefix}-{user_id}",
            "event_type": kinds[n % len(kinds)],
            "item_id": n,
            "category": "sports",
            "price": 20.0,
            "device": "mobile",
            "country": "DE",
            "ts": (EVENTS_AT + timedelta(seconds=n)).isoformat(),
        }
        for n in range(count)
    ]


@dataclass
class Api:
    server: Server
    settings: TailorSettings  # what the server runs with, for reading its stores
    database_url: str
    decision_ids: dict[int, list[str]] = field(default_factory=dict)

    def post(self, path: str, body: Any) -> dict[str, Any]:
        with self.server.client() as client:
            response = client.post(path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def decide(self, user_id: int) -> dict[str, Any]:
        body = {
            "user_id": user_id,
            "placement": "homepage_banner",
            "context": {"device": "mobile", "country": "DE", "timestamp": DECIDED_AT.isoformat()},
        }
        decision = self.post("/v1/personalize", body)
        self.decision_ids.setdefault(user_id, []).append(decision["decision_id"])
        return decision

    def decide_until_session_seen(self, user_id: int, events_30m: int) -> None:
        """A stream worker may still be starting: wait for it, not for a guess."""
        deadline = time.monotonic() + 60
        while self.decide(user_id)["signals"]["session_events_30m"] != events_30m:
            assert time.monotonic() < deadline, f"user {user_id}'s session never showed"
            time.sleep(0.1)

    def delete(self, user_id: int, **params: Any) -> tuple[int, dict[str, Any]]:
        with self.server.client() as client:
            response = client.delete(f"/v1/users/{user_id}", headers=ADMIN, params=params)
        return response.status_code, response.json()

    def give_history(self, user_id: int) -> None:
        """Features are materialized already; add a session, decisions (with their
        shadows, an assignment and a trigger) and outcomes of each decision."""
        assert self.post("/v1/events", events(user_id, "live"))["accepted"] == 5
        self.decide_until_session_seen(user_id, 5)
        self.decide(user_id)
        seen_at = (DECIDED_AT + timedelta(seconds=30)).isoformat()
        self.post(
            "/v1/outcomes",
            [
                {
                    "outcome_id": f"{kind}-{decision_id}",
                    "decision_id": decision_id,
                    "type": kind,
                    "ts": seen_at,
                }
                for decision_id in self.decision_ids[user_id]
                for kind in ("impression", "click")
            ],
        )

    def rows_of(self, engine: Engine, user_id: int) -> dict[str, int]:
        """Counted directly, outcomes and shadows by the decision ids the client saw (the
        decisions' own rows are what erasure removes first)."""
        ids = self.decision_ids[user_id]
        queries = {
            "decisions": select(func.count()).where(decisions.c.user_id == user_id),
            "outcomes": select(func.count()).where(outcomes.c.decision_id.in_(ids)),
            "shadow_decisions": select(func.count()).where(shadow_decisions.c.decision_id.in_(ids)),
            "assignments": select(func.count()).where(assignments.c.user_id == user_id),
            "trigger_outbox": select(func.count()).where(trigger_outbox.c.user_id == user_id),
        }
        with engine.connect() as connection:
            return {
                table: connection.execute(query).scalar_one() for table, query in queries.items()
            }

    def full_history(self, user_id: int) -> dict[str, int]:
        made = len(self.decision_ids[user_id])
        return {
            "decisions": made,
            "outcomes": 2 * made,
            "shadow_decisions": made,
            "assignments": 1,
            "trigger_outbox": 1,
        }

    def online(self, user_ids: list[int]) -> dict[str, list[Any]]:
        store = open_store(self.settings)
        rows = [{"user_id": user_id} for user_id in user_ids]
        return store.get_online_features(features=FEATURES, entity_rows=rows).to_dict()

    def dropped_events(self) -> float:
        with self.server.client() as client:
            text = client.get("/metrics/").text
        for line in text.splitlines():
            if line.startswith('tailor_events_dropped_total{reason="opted_out"}'):
                return float(line.split()[-1])
        return 0.0


def erase_and_check(api: Api, users: tuple[int, int, int]) -> dict[str, Any]:
    """The flow both profiles share; returns the erasure's answer for profile checks."""
    erased, kept, kept_consent = users
    for user_id in users:
        api.give_history(user_id)
    engine = database_engine(api.database_url)
    try:
        for user_id in users:
            wait_for(
                lambda u=user_id: api.rows_of(engine, u) == api.full_history(u),
                f"user {user_id}'s decisions, outcomes, shadows, assignment and trigger",
                seconds=30,
            )
        expected = api.full_history(erased)
        before = api.online([erased, kept])
        assert before["cart_items"] == [2, 2]
        assert None not in before["sessions_30d"]

        with api.server.client() as client:
            assert client.delete(f"/v1/users/{erased}").status_code == 401
        status, answer = api.delete(erased)
        assert status == 200, answer
        assert answer["user_id"] == erased
        assert answer["opted_out"] is True
        assert answer["unavailable"] == {}
        assert {table: answer["erased"][table] for table in TABLES} == expected
        assert answer["erased"]["online_features"] == 2  # behavior and session views
        assert answer["erased"]["session_states"] == 1

        # Nothing of the erased user in any table; the other user untouched.
        assert api.rows_of(engine, erased) == dict.fromkeys(TABLES, 0)
        assert api.rows_of(engine, kept) == api.full_history(kept)
        with engine.connect() as connection:
            reason = connection.execute(
                select(opt_outs.c.reason).where(opt_outs.c.user_id == erased)
            ).scalar_one()
        assert reason == "erasure requested"
        online = api.online([erased, kept])
        assert online["sessions_30d"][0] is None and online["cart_items"][0] is None
        assert online["sessions_30d"][1] is not None and online["cart_items"][1] == 2

        # Opted out: their events are dropped and counted, the others' still go through.
        report = api.post("/v1/events", events(erased, "after") + events(kept, "after", 1))
        assert (report["accepted"], report["dropped"], report["rejected"]) == (1, 5, 0)
        only_theirs = api.post("/v1/events", events(erased, "again"))
        assert (only_theirs["accepted"], only_theirs["dropped"]) == (0, 5)
        assert api.dropped_events() == 10
        assert api.rows_of(engine, erased) == dict.fromkeys(TABLES, 0)

        # Erasure is idempotent: a repeat finds nothing left.
        status, again = api.delete(erased)
        assert status == 200
        assert set(again["erased"].values()) == {0}

        # keep_consent: the data goes, the consent stays, and the session starts afresh.
        status, kept_answer = api.delete(kept_consent, keep_consent="true")
        assert status == 200 and kept_answer["opted_out"] is False
        assert kept_answer["erased"]["session_states"] == 1
        fresh = api.post("/v1/events", events(kept_consent, "fresh", 1))
        assert (fresh["accepted"], fresh["dropped"]) == (1, 0)
        api.decide_until_session_seen(kept_consent, 1)
    finally:
        engine.dispose()
    return answer


def copy_embedded_stores(flow: Flow, data_dir: Path) -> None:
    """The flow's registry and online store, copied so erasing touches no other test;
    the online store through SQLite's backup, as another test's server may write it."""
    source = flow.data_dir / "feast"
    shutil.copytree(source, data_dir / "feast", ignore=shutil.ignore_patterns("online_store*"))
    with (
        closing(sqlite3.connect(source / "online_store.db")) as original,
        closing(sqlite3.connect(data_dir / "feast" / "online_store.db")) as copy,
    ):
        original.backup(copy)


@pytest.fixture(scope="module")
def embedded_api(flow: Flow, tmp_path_factory) -> Iterator[tuple[Api, tuple[int, int, int]]]:
    home = tmp_path_factory.mktemp("erasure-embedded")
    copy_embedded_stores(flow, home / "data")
    users = users_with_history(flow)
    env = flow.env | {
        "TAILOR_DATA_DIR": str(home / "data"),
        "TAILOR_SERVING__PLACEMENTS_FILE": str(placements(home, users)),
        "TAILOR_SERVING__ADMIN_API_KEY": ADMIN["X-API-Key"],
    }
    settings = flow.settings(data_dir=home / "data")
    server = start_server(env)
    yield Api(server, settings, settings.decision_database_url), users
    server.stop()


def test_embedded_erasure_leaves_nothing_of_the_user(embedded_api):
    api, users = embedded_api
    answer = erase_and_check(api, users)
    assert answer["erased"]["queued_events"] == 0  # publishing processes at once here


@pytest.fixture(scope="module")
def redis_api(redis_flow: Flow, tmp_path_factory) -> Iterator[tuple[Api, tuple[int, int, int]]]:
    home = tmp_path_factory.mktemp("erasure-redis")
    users = users_with_history(redis_flow)
    with required.scratch_database() as database_url:
        env = redis_flow.env | {
            "TAILOR_SERVING__PLACEMENTS_FILE": str(placements(home, users)),
            "TAILOR_SERVING__ADMIN_API_KEY": ADMIN["X-API-Key"],
            "TAILOR_DECISIONS__DATABASE_URL": database_url,
        }
        worker = subprocess.Popen(
            [str(TAILOR), "stream", "--consumer", "erasure-test"], env=redis_flow.env
        )
        server = start_server(env)
        try:
            yield Api(server, redis_flow.settings(), database_url), users
        finally:
            server.stop()
            worker.terminate()
            worker.wait(timeout=20)


def test_redis_erasure_leaves_nothing_of_the_user(redis_api):
    api, users = redis_api
    erased, kept, _ = users
    erase_and_check(api, users)
    client = redis.Redis.from_url(api.settings.servers.redis_url)
    assert client.get(session_state_key(api.settings.project, erased)) is None
    assert client.get(session_state_key(api.settings.project, kept)) is not None


def test_with_the_decision_database_down_events_wait_and_erasure_names_the_store(flow):
    """Consent unknown since start-up: a batch is refused whole (nothing of an opted-out
    user kept, nothing of the others lost); erasure claims nothing in the database and
    says so with a 503, after erasing what it could reach (here: nothing to erase)."""
    nobody = 987_654_321
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/tailor"
    server = start_server(
        flow.env
        | {
            "TAILOR_DECISIONS__DATABASE_URL": dead,
            "TAILOR_SERVING__ADMIN_API_KEY": ADMIN["X-API-Key"],
        }
    )
    try:
        with server.client() as client:
            refused = client.post("/v1/events", json=events(nobody, "unknown"))
            erasure = client.delete(f"/v1/users/{nobody}", headers=ADMIN)
    finally:
        server.stop()
    assert refused.status_code == 503
    assert "who opted out is not known yet" in refused.json()["detail"]
    assert erasure.status_code == 503
    body = erasure.json()
    assert body["opted_out"] is None
    assert list(body["unavailable"]) == ["decision_database"]
    assert body["erased"] == {"session_states": 0, "queued_events": 0, "online_features": 0}
