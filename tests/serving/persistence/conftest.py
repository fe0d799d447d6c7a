"""Fixtures of the persistence tests: an emptied trigger outbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete

from tailor.core.database.engine import open_database
from tailor.core.database.schema import trigger_outbox


@pytest.fixture
def outbox_engine(database_url: str) -> Iterator[Engine]:
    """An empty outbox: the dispatcher takes every due row, whichever test made it."""
    engine = open_database(database_url)
    with engine.begin() as connection:
        connection.execute(delete(trigger_outbox))
    yield engine
    engine.dispose()
