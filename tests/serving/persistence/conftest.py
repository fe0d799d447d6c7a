"""Fixtures of the serving tests: each module gets one SQLite and one PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete

from tailor.core.database.engine import open_database
from tailor.core.database.schema import trigger_outbox
from tests.support.required import scratch_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'decisions.db'}"
    else:
        with scratch_database() as url:
            yield url


@pytest.fixture
def outbox_engine(database_url: str) -> Iterator[Engine]:
    """An empty outbox: the dispatcher takes every due row, whichever test made it."""
    engine = open_database(database_url)
    with engine.begin() as connection:
        connection.execute(delete(trigger_outbox))
    yield engine
    engine.dispose()
