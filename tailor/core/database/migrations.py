"""Bring the decision database to the schema this release needs, or say why not.

Alembic owns every table (`alembic/versions/`). Every process that opens the database
(the API, the CLI) calls `prepare_schema`: with `decisions.auto_migrate` it upgrades to
head, else it refuses an old schema with the command that fixes it. Replicas starting
together serialise on a lock (a PostgreSQL advisory lock, or a file lock beside a
SQLite file), so the second finds the work done. A database made by a release before
migrations existed holds the baseline tables without a version: it is stamped at the
baseline, then upgraded like any other.
"""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, make_url, text

from tailor.core.database.schema import decisions

SCRIPT_LOCATION = Path(__file__).resolve().parent / "alembic"
VERSION_TABLE = "tailor_alembic_version"
# The schema every release before migrations created with `metadata.create_all`.
BASELINE_REVISION = "0001"
_ADVISORY_LOCK_KEY = zlib.crc32(b"tailor:migrations")


class SchemaOutOfDate(RuntimeError):
    """The database schema is not the one this release needs and may not be changed now."""


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # None: no Tailor tables at all, or a pre-migration database
    head: str
    legacy: bool  # tables made before migrations existed, not yet stamped

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["version_table"] = VERSION_TABLE
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, f"no migrations in {SCRIPT_LOCATION}"
    return head


def _status(connection: Connection) -> SchemaStatus:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    current = context.get_current_revision()
    legacy = current is None and inspect(connection).has_table(decisions.name)
    return SchemaStatus(current, head_revision(), legacy)


def schema_status(engine: Engine) -> SchemaStatus:
    with engine.connect() as connection:
        return _status(connection)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that no other migrating process shares until it ends."""
    url = make_url(engine.url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": _ADVISORY_LOCK_KEY})
            yield connection
        return
    if url.database and url.database != ":memory:":
        lock_path = Path(f"{url.database}.migrate.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with engine.begin() as connection:
                yield connection
        return
    with engine.begin() as connection:
        yield connection


def upgrade(engine: Engine) -> SchemaStatus:
    """Migrate to head (stamping a pre-migration database first); the status after."""
    with _migration_lock(engine) as connection:
        status = _status(connection)
        _refuse_unknown(status)
        config = _config(connection)
        if status.legacy:
            command.stamp(config, BASELINE_REVISION)
        if not status.up_to_date:
            command.upgrade(config, "head")
        return _status(connection)


def _refuse_unknown(status: SchemaStatus) -> None:
    if status.current is None:
        return
    try:
        ScriptDirectory.from_config(_config()).get_revision(status.current)
    except CommandError:
        raise SchemaOutOfDate(
            f"the decision database is at revision {status.current}, which this release "
            f"does not know (its newest is {status.head}): a newer Tailor migrated it. "
            "Run that release, or restore a backup taken before it."
        ) from None


def prepare_schema(engine: Engine, auto_migrate: bool) -> None:
    """Upgrade, or check that no upgrade is needed; SchemaOutOfDate says what to run."""
    if auto_migrate:
        upgrade(engine)
        return
    status = schema_status(engine)
    _refuse_unknown(status)
    if not status.up_to_date:
        raise SchemaOutOfDate(
            f"the decision database schema is at {status.current or 'no revision'}, this "
            f"release needs {status.head}: run `tailor db upgrade`, or set "
            "TAILOR_DECISIONS__AUTO_MIGRATE=true to upgrade at start-up"
        )
