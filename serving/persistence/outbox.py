"""Triggers (notifications a decision rule fires) recorded once, then delivered by webhook.

Recording is exactly-once: a unique key on (user, placement, rule, window) lets the
first insert win, whichever process or restart makes it. Delivery is at-least-once: a
dispatcher claims a due row with a conditional UPDATE that leases it, so two processes
never send it at the same time, POSTs it, then marks it sent. A crash between the POST
and that mark sends it again once the lease lapses, so every POST carries
`Idempotency-Key: <outbox_id>` for the receiver to drop repeats.

Rows without a webhook (neither the trigger's nor the default) are stored as `stored`:
the table itself is the notification for a consumer that polls it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from prometheus_client import Counter
from sqlalchemy import Engine, Row, select, update
from sqlalchemy.exc import SQLAlchemyError

from serving.decision.ports import Enqueued, Trigger
from tailor.core.database.engine import insert_ignoring_conflicts
from tailor.core.database.schema import trigger_outbox, utc_now

log = logging.getLogger(__name__)

DELIVERED = Counter("tailor_triggers_delivered", "Triggers delivered to their webhook (2xx)")
FAILED = Counter("tailor_triggers_failed", "Triggers given up on after max attempts")
RETRIES = Counter("tailor_triggers_retries", "Failed deliveries that will be retried")

MAX_BACKOFF_SECONDS = 300.0
DUE_BATCH = 100  # rows a dispatcher looks at per pass


class OutboxUnavailable(RuntimeError):
    """The outbox database failed; the trigger was not recorded."""


def _as_dict(row: Row) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in row._mapping.items()
    }


class Outbox:
    def __init__(self, engine: Engine, default_webhook_url: str | None) -> None:
        self._engine = engine
        self._default_webhook_url = default_webhook_url
        self._insert = insert_ignoring_conflicts(engine, trigger_outbox)

    def enqueue(self, trigger: Trigger) -> Enqueued:
        """Record `trigger` durably, or return the one already recorded for its window."""
        webhook_url = trigger.webhook_url or self._default_webhook_url
        now = utc_now()
        outbox_id = uuid.uuid4().hex
        row = {
            "id": outbox_id,
            "created_at": now,
            "user_id": trigger.user_id,
            "placement": trigger.placement,
            "rule_id": trigger.rule_id,
            "notification": trigger.notification,
            "window_start": trigger.window_start,
            "decision_id": trigger.decision_id,
            "payload": trigger.payload,
            "webhook_url": webhook_url,
            "status": "pending" if webhook_url else "stored",
            "attempts": 0,
            "next_attempt_at": now if webhook_url else None,
        }
        key = trigger_outbox.c
        try:
            with self._engine.begin() as connection:
                inserted = self._insert.values(row).returning(trigger_outbox.c.id)
                if connection.execute(inserted).scalar_one_or_none() is not None:
                    return Enqueued(outbox_id, created=True)
                existing = connection.execute(
                    select(key.id).where(
                        key.user_id == trigger.user_id,
                        key.placement == trigger.placement,
                        key.rule_id == trigger.rule_id,
                        key.window_start == trigger.window_start,
                    )
                ).scalar_one()
        except SQLAlchemyError as error:
            raise OutboxUnavailable(f"trigger outbox unreachable: {error}") from error
        return Enqueued(existing, created=False)

    def get(self, outbox_id: str) -> dict[str, Any] | None:
        rows = self._select(select(trigger_outbox).where(trigger_outbox.c.id == outbox_id))
        return rows[0] if rows else None

    def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first."""
        query = select(trigger_outbox).order_by(trigger_outbox.c.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(trigger_outbox.c.status == status)
        return self._select(query)

    def _select(self, query: Any) -> list[dict[str, Any]]:
        try:
            with self._engine.connect() as connection:
                return [_as_dict(row) for row in connection.execute(query)]
        except SQLAlchemyError as error:
            raise OutboxUnavailable(f"trigger outbox unreachable: {error}") from error


class TriggerDispatcher:
    def __init__(
        self,
        engine: Engine,
        *,
        timeout_seconds: float,
        max_attempts: int,
        backoff_seconds: float,
        interval_seconds: float,
        lease_seconds: float = 30.0,
        replay_spooled: Callable[[], int] | None = None,
    ) -> None:
        """`replay_spooled` moves triggers spooled while the database was down into the
        outbox; it runs before each delivery round."""
        if lease_seconds <= timeout_seconds:
            # Otherwise a slow POST's row could be claimed and sent again meanwhile.
            raise ValueError("lease_seconds must exceed the webhook timeout_seconds")
        self._engine = engine
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._interval = interval_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._client = httpx.Client(timeout=timeout_seconds)
        self._replay_spooled = replay_spooled
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trigger-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread if started, and close the HTTP client either way."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()
        self._client.close()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                if self._replay_spooled is not None:
                    self._replay_spooled()
                self.run_once()
            except SQLAlchemyError as error:
                log.warning("trigger dispatcher cannot reach the outbox: %s", error)
            self._stopped.wait(self._interval)

    def run_once(self) -> int:
        """Deliver the due rows this dispatcher manages to claim; how many got a 2xx."""
        columns = trigger_outbox.c
        due = (
            select(columns.id)
            .where(columns.status == "pending", columns.next_attempt_at <= utc_now())
            .order_by(columns.next_attempt_at)
            .limit(DUE_BATCH)
        )
        with self._engine.connect() as connection:
            due_ids = connection.execute(due).scalars().all()
        delivered = 0
        for outbox_id in due_ids:
            row = self._claim(outbox_id)
            if row is not None:
                delivered += self._deliver(row)
        return delivered

    def _claim(self, outbox_id: str) -> Row | None:
        """Lease the row if it is still due, counting the attempt; None when another
        dispatcher got there first. The row comes back as it is after the claim."""
        now = utc_now()
        columns = trigger_outbox.c
        claim = (
            update(trigger_outbox)
            .where(
                columns.id == outbox_id,
                columns.status == "pending",
                columns.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + self._lease, attempts=columns.attempts + 1)
            .returning(*columns)
        )
        with self._engine.begin() as connection:
            return connection.execute(claim).one_or_none()

    def _deliver(self, row: Row) -> int:
        body = {
            "outbox_id": row.id,
            "user_id": row.user_id,
            "placement": row.placement,
            "rule_id": row.rule_id,
            "notification": row.notification,
            "window_start": row.window_start.isoformat(),
            "decision_id": row.decision_id,
            "payload": row.payload,
        }
        try:
            response = self._client.post(
                row.webhook_url, json=body, headers={"Idempotency-Key": row.id}
            )
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        now = utc_now()
        if error is None:
            values: dict[str, Any] = {"status": "sent", "sent_at": now, "next_attempt_at": None}
            DELIVERED.inc()
        elif row.attempts >= self._max_attempts:
            values = {"status": "failed", "next_attempt_at": None, "last_error": error}
            FAILED.inc()
            log.warning("trigger %s failed after %d attempts: %s", row.id, row.attempts, error)
        else:
            delay = min(self._backoff * 2 ** (row.attempts - 1), MAX_BACKOFF_SECONDS)
            values = {"next_attempt_at": now + timedelta(seconds=delay), "last_error": error}
            RETRIES.inc()
        with self._engine.begin() as connection:
            connection.execute(
                update(trigger_outbox).where(trigger_outbox.c.id == row.id).values(**values)
            )
        return int(error is None)
