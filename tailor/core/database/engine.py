"""Connections to the decision database (SQLite or PostgreSQL) and the helpers every
writer of it shares: idempotent inserts, and telling an outage from a refused row."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.dml import Insert

from tailor.core.database.migrations import prepare_schema

# Long enough for a slow network, short enough that a black-holed host does not hang
# a request that writes (the outbox) for the driver's default of minutes.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5
# A writer waits this long for another process's SQLite write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000


class DatabaseUnavailable(RuntimeError):
    """The decision database cannot be reached or prepared when the service starts."""


_INSERTS: dict[str, Callable[[Table], Any]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


def database_engine(url: str) -> Engine:
    """An engine for `url` that has not connected yet, for a service that starts while
    the database is down (the decision log then prepares the schema once it answers);
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


def open_database(url: str, auto_migrate: bool = True) -> Engine:
    """The engine for `url` with its schema current; fails fast when unreachable, and
    with `SchemaOutOfDate` when the schema is old and `auto_migrate` is off."""
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
    try:
        prepare_schema(engine, auto_migrate)
    except BaseException:
        engine.dispose()
        raise
    return engine


def insert_ignoring_conflicts(engine: Engine, table: Table) -> Insert:
    """INSERT that skips rows whose key already exists, so replays and races are no-ops."""
    return _INSERTS[engine.dialect.name](table).on_conflict_do_nothing()


def is_unavailable(error: SQLAlchemyError) -> bool:
    """Whether `error` says the database is down, busy or unreachable (retry later), as
    opposed to rejecting the statement itself (retrying cannot help)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError | PoolTimeout)
