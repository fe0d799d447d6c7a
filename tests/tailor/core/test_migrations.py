"""Alembic owns the decision database: an empty database and one made by the release
before migrations both end at exactly the tables `schema.py` declares, on SQLite and on
PostgreSQL, and replicas migrating at once do not trip over each other."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Engine,
    MetaData,
    Table,
    func,
    insert,
    select,
)

from tailor.core.database.engine import database_engine, open_database
from tailor.core.database.migrations import (
    VERSION_TABLE,
    SchemaOutOfDate,
    head_revision,
    prepare_schema,
    schema_status,
    upgrade,
)
from tailor.core.database.schema import TABLE_PREFIX, decisions, metadata
from tests.support.databases import emptied, previous_release_tables


@pytest.fixture
def empty(database_url: str) -> Iterator[Engine]:
    engine = database_engine(database_url)
    emptied(engine)
    yield engine
    engine.dispose()


def _differences(engine: Engine) -> list:
    """What autogenerate would change to reach `schema.py`: nothing, when in step."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": VERSION_TABLE,
                "compare_type": True,
                "include_name": lambda name, kind, _: (
                    kind != "table" or name.startswith(TABLE_PREFIX)
                ),
            },
        )
        return compare_metadata(context, metadata)


def test_an_empty_database_is_migrated_to_exactly_the_declared_tables(empty):
    assert schema_status(empty).current is None
    status = upgrade(empty)
    assert status.current == status.head == head_revision()
    assert _differences(empty) == []


def test_a_database_of_the_release_before_migrations_keeps_its_rows(empty):
    previous_release_tables().create_all(empty)
    row = {
        "decision_id": "a" * 32,
        "created_at": datetime(2026, 3, 4, 10, tzinfo=UTC),
        "user_id": 7,
        "placement": "homepage_banner",
        "variant_id": "welcome",
        "degraded": [],
        "request": {"user_id": 7},
        "decision": {"variant": {"id": "welcome"}},
    }
    with empty.begin() as connection:
        connection.execute(insert(decisions), row)
    before = schema_status(empty)
    assert (before.current, before.legacy) == (None, True)

    assert upgrade(empty).up_to_date
    assert _differences(empty) == []
    with empty.connect() as connection:
        kept = connection.execute(select(decisions)).one()
    assert kept.decision_id == row["decision_id"] and kept.request == row["request"]


def test_with_auto_migration_off_an_old_schema_is_refused_with_the_fix(empty):
    previous_release_tables().create_all(empty)
    with pytest.raises(SchemaOutOfDate, match="tailor db upgrade"):
        prepare_schema(empty, auto_migrate=False)
    prepare_schema(empty, auto_migrate=True)
    prepare_schema(empty, auto_migrate=False)  # now current: nothing to refuse


def test_a_revision_this_release_does_not_know_is_refused(empty):
    upgrade(empty)
    with empty.begin() as connection:
        version = Table(VERSION_TABLE, MetaData(), autoload_with=connection)
        connection.execute(version.update().values(version_num="9999_from_the_future"))
    with pytest.raises(SchemaOutOfDate, match="newer Tailor"):
        prepare_schema(empty, auto_migrate=True)


def test_replicas_starting_together_migrate_once(empty, database_url):
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def start_replica() -> None:
        start.wait()
        try:
            open_database(database_url).dispose()
        except BaseException as error:  # the test reports it below
            errors.append(error)

    threads = [threading.Thread(target=start_replica) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert _differences(empty) == []
    with empty.connect() as connection:
        version = Table(VERSION_TABLE, MetaData(), autoload_with=connection)
        assert connection.execute(select(func.count()).select_from(version)).scalar() == 1
