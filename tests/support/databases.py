"""Decision databases in the states tests need: emptied, or as an old release left them."""

from __future__ import annotations

from sqlalchemy import Engine, MetaData, Table

from tailor.core.database.migrations import VERSION_TABLE
from tailor.core.database.schema import metadata


def emptied(engine: Engine) -> None:
    """Drop Tailor's tables and its migration record: a database that never saw Tailor."""
    metadata.drop_all(engine)
    with engine.begin() as connection:
        Table(VERSION_TABLE, MetaData()).drop(connection, checkfirst=True)
