"""The SQL database behind the decision log, the trigger outbox and the opt-out list.

One schema for SQLite (embedded profile) and PostgreSQL (redis profile, where the
tables share a database with Feast's registry, hence the `tailor_` prefix). Times are
stored as UTC and always come back aware: SQLite keeps no offset and PostgreSQL answers
in the session's time zone, so `UtcDateTime` normalises both ways in one place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.dml import Insert

# Long enough for a slow network, short enough that a black-holed host does not hang
# a request that writes (the outbox) for the driver's default of minutes.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5
# A writer waits this long for another process's SQLite write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000


class DatabaseUnavailable(RuntimeError):
    """The decision database cannot be reached or prepared when the service starts."""


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp column that accepts only aware datetimes and returns aware UTC ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware one (UTC is stored)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


metadata = MetaData()

decisions = Table(
    "tailor_decisions",
    metadata,
    Column("decision_id", String(32), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False, index=True),
    Column("user_id", BigInteger, nullable=False, index=True),
    Column("placement", String(100), nullable=False),
    Column("variant_id", String(100), nullable=False),
    Column("config_version", String(100)),
    Column("model_version", String(100)),
    Column("degraded", JSON, nullable=False),
    Column("request", JSON, nullable=False),
    Column("decision", JSON, nullable=False),
)

trigger_outbox = Table(
    "tailor_trigger_outbox",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("placement", String(100), nullable=False),
    Column("rule_id", String(100), nullable=False),
    Column("notification", String(100), nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("decision_id", String(32), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("webhook_url", String),
    # pending | sent | failed | stored (no webhook: the row is the notification)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime),
    Column("last_error", Text),
    Column("sent_at", UtcDateTime),
    # Makes a trigger fire at most once per user, rule and window, whichever process
    # or restart sees it.
    UniqueConstraint("user_id", "placement", "rule_id", "window_start"),
)

opt_outs = Table(
    "tailor_opt_outs",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("reason", String),
)

_INSERTS: dict[str, Callable[[Table], Any]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


def database_engine(url: str) -> Engine:
    """An engine for `url` that has not connected yet, for a service that starts while
    the database is down (the decision log then creates the tables once it answers);
    `open_database` is the usual door."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _INSERTS:
        raise ValueError(
            f"the decision database must be SQLite or PostgreSQL, not {backend!r} "
            f"({parsed.render_as_string(hide_password=True)})"
        )
    if backend == "postgresql":
        connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, pool_pre_ping=True, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(connection: sqlite3.Connection, _record: object) -> None:
    # WAL lets readers (lookups) run while the log writer commits; the busy timeout
    # makes two processes' writers queue instead of failing with "database is locked".
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def open_database(url: str) -> Engine:
    """The engine for `url` with Tailor's tables created; fails fast when unreachable."""
    engine = database_engine(url)
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as error:
        engine.dispose()
        safe_url = make_url(url).render_as_string(hide_password=True)
        raise DatabaseUnavailable(
            f"the decision database {safe_url} cannot be reached ({error.__cause__ or error}). "
            "Start it, or point TAILOR_DECISIONS__DATABASE_URL at one that is up (unset, it "
            "is SQLite under the data dir on the embedded profile and the registry's "
            "PostgreSQL on the redis profile)."
        ) from error
    create_tables(engine)
    return engine


def create_tables(engine: Engine) -> None:
    """`create_all` checks, then creates: processes starting together can both find a
    table missing and the slower one's CREATE fails. Every such failure means another
    process made progress, so a pass per table settles it."""
    passes = len(metadata.tables) + 1
    for attempt in range(passes):
        try:
            metadata.create_all(engine)
            return
        except DBAPIError:
            if attempt == passes - 1:
                raise


def insert_ignoring_conflicts(engine: Engine, table: Table) -> Insert:
    """INSERT that skips rows whose key already exists, so replays and races are no-ops."""
    return _INSERTS[engine.dialect.name](table).on_conflict_do_nothing()


def is_unavailable(error: SQLAlchemyError) -> bool:
    """Whether `error` says the database is down, busy or unreachable (retry later), as
    opposed to rejecting the statement itself (retrying cannot help)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError | PoolTimeout)
