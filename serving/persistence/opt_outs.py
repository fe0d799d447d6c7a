"""Users who opted out of personalization, checked on every request from memory.

Each API process holds the whole list as a set and re-reads it every `refresh_seconds`,
so the request path never waits on the database; a change made through this process
applies here at once and in the others at their next refresh. Privacy fails closed:
until the list has been read once, `contains` cannot answer and raises `ConsentUnknown`
(the caller serves default content); after that, a failed refresh keeps the last list.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import SQLAlchemyError

from serving.decision.ports import ConsentUnknown
from tailor.core.database.consent import opted_out_users
from tailor.core.database.engine import insert_ignoring_conflicts
from tailor.core.database.schema import opt_outs, utc_now

log = logging.getLogger(__name__)

# While the list is unknown every request gets default content: retry at least this often.
UNKNOWN_RETRY_SECONDS = 1.0


class OptOutsUnavailable(RuntimeError):
    """The database failed while changing or listing opt-outs."""


class OptOutList:
    def __init__(self, engine: Engine, refresh_seconds: float) -> None:
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._users: set[int] | None = None
        # Serialises writes and reloads so a reload that started before a change
        # cannot replace the set after it and hide that change until the next one.
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._reload()
        self._thread = threading.Thread(target=self._run, name="opt-out-refresh", daemon=True)
        self._thread.start()

    def contains(self, user_id: int) -> bool:
        users = self._users
        if users is None:
            raise ConsentUnknown("the opt-out list has not been read from the database yet")
        return user_id in users

    def add(self, user_id: int, reason: str | None = None) -> None:
        """Opt `user_id` out; adding one already out keeps its first date and reason."""
        insert = insert_ignoring_conflicts(self._engine, opt_outs).values(
            user_id=user_id, created_at=utc_now(), reason=reason
        )
        with self._lock:
            self._write(insert)
            if self._users is None:
                self._reload_locked()
            else:
                self._users.add(user_id)

    def remove(self, user_id: int) -> None:
        with self._lock:
            self._write(delete(opt_outs).where(opt_outs.c.user_id == user_id))
            if self._users is None:
                self._reload_locked()
            else:
                self._users.discard(user_id)

    def list(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Newest first."""
        query = select(opt_outs).order_by(opt_outs.c.created_at.desc()).limit(limit)
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(query).all()
        except SQLAlchemyError as error:
            raise OptOutsUnavailable(f"opt-out list unreachable: {error}") from error
        return [
            {"user_id": row.user_id, "created_at": row.created_at.isoformat(), "reason": row.reason}
            for row in rows
        ]

    def close(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _write(self, statement: Any) -> None:
        try:
            with self._engine.begin() as connection:
                connection.execute(statement)
        except SQLAlchemyError as error:
            raise OptOutsUnavailable(f"opt-out list unreachable: {error}") from error

    def _run(self) -> None:
        while not self._stopped.wait(
            self._refresh_seconds
            if self._users is not None
            else min(self._refresh_seconds, UNKNOWN_RETRY_SECONDS)
        ):
            self._reload()

    def _reload(self) -> None:
        with self._lock:
            self._reload_locked()

    def _reload_locked(self) -> None:
        try:
            with self._engine.connect() as connection:
                users = opted_out_users(connection)
        except SQLAlchemyError as error:
            state = "keeping the last list" if self._users is not None else "consent unknown"
            log.warning("cannot refresh the opt-out list (%s); %s", error, state)
            return
        self._users = users
