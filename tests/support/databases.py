"""Decision databases in the states tests need: emptied, or as an old release left them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from tailor.core.database.migrations import VERSION_TABLE
from tailor.core.database.schema import metadata


def emptied(engine: Engine) -> None:
    """Drop Tailor's tables and its migration record: a database that never saw Tailor."""
    metadata.drop_all(engine)
    with engine.begin() as connection:
        Table(VERSION_TABLE, MetaData()).drop(connection, checkfirst=True)


def previous_release_tables() -> MetaData:
    """The tables as the last release before migrations made them (`create_all`)."""
    old = MetaData()
    Table(
        "tailor_decisions",
        old,
        Column("decision_id", String(32), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False, index=True),
        Column("user_id", BigInteger, nullable=False, index=True),
        Column("placement", String(100), nullable=False),
        Column("variant_id", String(100), nullable=False),
        Column("config_version", String(100)),
        Column("model_version", String(100)),
        Column("degraded", JSON, nullable=False),
        Column("request", JSON, nullable=False),
        Column("decision", JSON, nullable=False),
    )
    Table(
        "tailor_trigger_outbox",
        old,
        Column("id", String(32), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("user_id", BigInteger, nullable=False),
        Column("placement", String(100), nullable=False),
        Column("rule_id", String(100), nullable=False),
        Column("notification", String(100), nullable=False),
        Column("window_start", DateTime(timezone=True), nullable=False),
        Column("decision_id", String(32), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("webhook_url", String),
        Column("status", String(16), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", DateTime(timezone=True)),
        Column("last_error", Text),
        Column("sent_at", DateTime(timezone=True)),
        UniqueConstraint("user_id", "placement", "rule_id", "window_start"),
    )
    Table(
        "tailor_opt_outs",
        old,
        Column("user_id", BigInteger, primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("reason", String),
    )
    return old
