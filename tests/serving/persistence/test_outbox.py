"""The trigger outbox and its dispatcher against real databases and a real webhook."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, select

from serving.decision.ports import Enqueued, Trigger
from serving.persistence.outbox import Outbox, TriggerDispatcher
from tailor.core.database.engine import open_database
from tailor.core.database.schema import trigger_outbox
from tests.support.waiting import wait_for
from tests.support.webhook import Receiver, webhook_receiver

WINDOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(outbox_engine: Engine) -> Engine:
    return outbox_engine


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as endpoint:
        yield endpoint


def _trigger(user_id: int = 1, window_start: datetime = WINDOW, **overrides) -> Trigger:
    values = {
        "user_id": user_id,
        "placement": "checkout_nudge",
        "rule_id": "cart_abandoner",
        "notification": "email_reminder",
        "window_start": window_start,
        "decision_id": uuid.uuid4().hex,
        "payload": {"variant": "free_shipping"},
        "webhook_url": None,
    }
    return Trigger(**values | overrides)


def _dispatcher(engine: Engine, **overrides) -> TriggerDispatcher:
    options = {
        "timeout_seconds": 2.0,
        "max_attempts": 5,
        "backoff_seconds": 0.01,
        "interval_seconds": 0.01,
    } | overrides
    return TriggerDispatcher(engine, **options)


def _rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(trigger_outbox)).scalar_one()


def _wait_for_status(outbox: Outbox, outbox_id: str, status: str) -> dict[str, Any]:
    wait_for(lambda: outbox.get(outbox_id)["status"] == status, f"status {status}")
    return outbox.get(outbox_id)


def test_a_trigger_is_recorded_once_per_window_across_restarts(engine, database_url):
    outbox = Outbox(engine, default_webhook_url=None)
    first = outbox.enqueue(_trigger())
    assert first.created
    assert outbox.enqueue(_trigger()) == Enqueued(first.outbox_id, created=False)

    restarted = open_database(database_url)  # another process, or this one restarted
    try:
        same_instant = WINDOW.astimezone(timezone(timedelta(hours=2)))
        again = Outbox(restarted, default_webhook_url=None).enqueue(
            _trigger(window_start=same_instant)
        )
    finally:
        restarted.dispose()
    assert (again.outbox_id, again.created) == (first.outbox_id, False)
    assert _rows(engine) == 1

    next_window = outbox.enqueue(_trigger(window_start=WINDOW + timedelta(hours=1)))
    assert next_window.created
    assert next_window.outbox_id != first.outbox_id
    assert _rows(engine) == 2


def test_failed_deliveries_are_retried_until_one_succeeds(engine, receiver):
    receiver.status = lambda n: 500 if n <= 2 else 204
    outbox = Outbox(engine, default_webhook_url="http://127.0.0.1:1/unused")
    trigger = _trigger(webhook_url=receiver.url)  # the trigger's own URL wins
    enqueued = outbox.enqueue(trigger)
    assert outbox.get(enqueued.outbox_id)["status"] == "pending"

    dispatcher = _dispatcher(engine)
    dispatcher.start()
    try:
        row = _wait_for_status(outbox, enqueued.outbox_id, "sent")
    finally:
        dispatcher.stop()
    assert [request["key"] for request in receiver.requests] == [enqueued.outbox_id] * 3
    assert receiver.requests[-1]["body"] == {
        "outbox_id": enqueued.outbox_id,
        "user_id": 1,
        "placement": "checkout_nudge",
        "rule_id": "cart_abandoner",
        "notification": "email_reminder",
        "window_start": WINDOW.isoformat(),
        "decision_id": trigger.decision_id,
        "payload": {"variant": "free_shipping"},
    }
    assert row["attempts"] == 3
    assert row["last_error"] == "HTTP 500"
    assert row["sent_at"] is not None


def test_a_trigger_that_never_gets_through_fails_after_max_attempts(engine, receiver):
    receiver.status = lambda _: 503
    failed_before = REGISTRY.get_sample_value("tailor_triggers_failed_total") or 0.0
    outbox = Outbox(engine, default_webhook_url=receiver.url)
    enqueued = outbox.enqueue(_trigger())
    dispatcher = _dispatcher(engine, max_attempts=3)
    try:
        deadline = time.monotonic() + 10
        while outbox.get(enqueued.outbox_id)["status"] == "pending":
            assert time.monotonic() < deadline
            assert dispatcher.run_once() == 0
    finally:
        dispatcher.stop()
    row = outbox.get(enqueued.outbox_id)
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("failed", 3, None)
    assert len(receiver.requests) == 3
    assert REGISTRY.get_sample_value("tailor_triggers_failed_total") - failed_before == 1


def test_two_dispatchers_deliver_each_row_once(engine, database_url, receiver):
    receiver.status = lambda _: time.sleep(0.01) or 200  # slow enough for both to overlap
    outbox = Outbox(engine, default_webhook_url=receiver.url)
    ids = {outbox.enqueue(_trigger(user_id)).outbox_id for user_id in range(20)}
    other_process = open_database(database_url)
    dispatchers = [_dispatcher(engine), _dispatcher(other_process)]
    start = threading.Barrier(2)
    delivered: list[int] = []

    def run(dispatcher: TriggerDispatcher) -> None:
        start.wait()
        delivered.append(dispatcher.run_once())

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for dispatcher in dispatchers:
            dispatcher.stop()
        other_process.dispose()
    assert sum(delivered) == 20
    assert all(count > 0 for count in delivered)  # both took part
    assert sorted(request["key"] for request in receiver.requests) == sorted(ids)
    assert {row["status"] for row in outbox.list()} == {"sent"}


def test_without_a_webhook_the_row_is_stored_and_never_posted(engine, receiver):
    outbox = Outbox(engine, default_webhook_url=None)
    stored = outbox.enqueue(_trigger(user_id=1))
    posted = outbox.enqueue(_trigger(user_id=2, webhook_url=receiver.url))
    dispatcher = _dispatcher(engine)
    try:
        assert dispatcher.run_once() == 1
    finally:
        dispatcher.stop()
    row = outbox.get(stored.outbox_id)
    assert (row["status"], row["attempts"], row["webhook_url"]) == ("stored", 0, None)
    assert [r["id"] for r in outbox.list(status="stored")] == [stored.outbox_id]
    assert [request["key"] for request in receiver.requests] == [posted.outbox_id]
