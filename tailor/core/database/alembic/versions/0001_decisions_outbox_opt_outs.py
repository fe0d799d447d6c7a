"""Decisions, trigger outbox and opt-outs: the schema of every release before migrations.

Revision ID: 0001
Revises:
Create Date: 2026-11-30

Written out in full rather than from `schema.py`, so this revision means the same
tables forever whatever the models become. Times are `DateTime(timezone=True)`, the
storage type of `UtcDateTime`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tailor_decisions",
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("placement", sa.String(length=100), nullable=False),
        sa.Column("variant_id", sa.String(length=100), nullable=False),
        sa.Column("config_version", sa.String(length=100), nullable=True),
        sa.Column("model_version", sa.String(length=100), nullable=True),
        sa.Column("degraded", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id"),
    )
    op.create_index("ix_tailor_decisions_created_at", "tailor_decisions", ["created_at"])
    op.create_index("ix_tailor_decisions_user_id", "tailor_decisions", ["user_id"])
    op.create_table(
        "tailor_trigger_outbox",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("placement", sa.String(length=100), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("notification", sa.String(length=100), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("webhook_url", sa.String(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "placement", "rule_id", "window_start"),
    )
    op.create_table(
        "tailor_opt_outs",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("tailor_opt_outs")
    op.drop_table("tailor_trigger_outbox")
    op.drop_index("ix_tailor_decisions_user_id", table_name="tailor_decisions")
    op.drop_index("ix_tailor_decisions_created_at", table_name="tailor_decisions")
    op.drop_table("tailor_decisions")
