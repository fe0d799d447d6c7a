"""The tables of the decision database: decisions and their shadows, outcomes,
experiment assignments, the trigger outbox, monitoring runs and opt-outs.

One schema for SQLite (embedded profile) and PostgreSQL (redis profile, where the
tables share a database with Feast's registry, hence the `tailor_` prefix). Alembic
migrations (`tailor/core/database/alembic/`) create and change them; a test checks that
the migrations end at exactly these definitions. Times are stored as UTC and always
come back aware: SQLite keeps no offset and PostgreSQL answers in the session's time
zone, so `UtcDateTime` normalises both ways in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

TABLE_PREFIX = "tailor_"


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
    Column("experiment_key", String(100), index=True),
    Column("arm", String(100)),
    Column("bucket", Float),
    Column("action_probability", Float, nullable=False),
    Column("propensity", Float),
    # SQL NULL, not JSON null, when no vector was logged: monitoring filters on it.
    Column("features", JSON(none_as_null=True)),
)

# What a shadow arm would have done beside a served decision (`serving.decision.shadow`).
shadow_decisions = Table(
    "tailor_shadow_decisions",
    metadata,
    Column("decision_id", String(32), primary_key=True),
    Column("experiment_key", String(100), primary_key=True),
    Column("arm", String(100), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("served_variant_id", String(100), nullable=False),
    Column("champion_variant_id", String(100), nullable=False),
    Column("variant_id", String(100)),
    Column("action_distribution", JSON, nullable=False),
    Column("scores", JSON, nullable=False),
    Column("model_version", String(100)),
    Column("latency_ms", Float, nullable=False),
    Column("error", String(200)),
)

# What users did after a decision, attributed to it within the type's window.
outcomes = Table(
    "tailor_outcomes",
    metadata,
    Column("outcome_id", String(160), primary_key=True),  # the sender's idempotency key
    Column("decision_id", String(32), nullable=False, index=True),
    Column("type", String(16), nullable=False),  # impression | click | conversion
    Column("value", Float),  # revenue of a conversion
    Column("ts", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

# The first exposure of each user to each experiment: the arm stays the user's (sticky
# assignment) whatever the weights become, and results count each user in one arm.
assignments = Table(
    "tailor_assignments",
    metadata,
    Column("experiment_key", String(100), primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("arm", String(100), nullable=False),
    Column("bucket", Float, nullable=False),
    Column("config_version", String(100), nullable=False),
    Column("first_exposed_at", UtcDateTime, nullable=False),
    # CUPED's covariate, known before exposure: purchases in the 30 days before it.
    Column("pre_exposure_purchases", Float),
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

# One row per `tailor monitor` run: what gauges and alerts read as columns, the
# per-feature figures as JSON (`tailor.core.monitoring_run` declares the row).
monitoring_runs = Table(
    "tailor_monitoring_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("started_at", UtcDateTime, nullable=False, index=True),
    Column("model_version", String(100)),
    Column("status", String(16), nullable=False),  # ok | warn | alert
    Column("reasons", JSON, nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("decisions", Integer, nullable=False),
    Column("score_psi", Float),
    Column("max_feature_psi", Float),
    Column("max_feature", String(200)),
    Column("feature_psi", JSON, nullable=False),
    Column("performance_start", UtcDateTime, nullable=False),
    Column("performance_end", UtcDateTime, nullable=False),
    Column("outcome_decisions", Integer, nullable=False),
    Column("conversions", Integer, nullable=False),
    Column("auc_live", Float),
    Column("ece_live", Float),
    Column("observed_expected", Float),
    Column("conversion_changes", Integer, nullable=False),
    Column("last_change_at", UtcDateTime),
    Column("details", JSON, nullable=False),
    Column("seconds", Float, nullable=False),
)

opt_outs = Table(
    "tailor_opt_outs",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("reason", String),
)
