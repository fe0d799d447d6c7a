"""Experiments and outcomes: the arm, bucket and action probability of each decision,
what users did after it, and each user's first exposure to an experiment.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tailor_decisions") as table:
        table.add_column(sa.Column("experiment_key", sa.String(length=100), nullable=True))
        table.add_column(sa.Column("arm", sa.String(length=100), nullable=True))
        table.add_column(sa.Column("bucket", sa.Float(), nullable=True))
        # Every decision logged before experiments was deterministic.
        table.add_column(
            sa.Column(
                "action_probability", sa.Float(), nullable=False, server_default=sa.text("1.0")
            )
        )
        table.create_index("ix_tailor_decisions_experiment_key", ["experiment_key"])
    with op.batch_alter_table("tailor_decisions") as table:
        table.alter_column("action_probability", server_default=None)
    op.create_table(
        "tailor_outcomes",
        sa.Column("outcome_id", sa.String(length=160), nullable=False),
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("outcome_id"),
    )
    op.create_index("ix_tailor_outcomes_decision_id", "tailor_outcomes", ["decision_id"])
    op.create_table(
        "tailor_assignments",
        sa.Column("experiment_key", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("arm", sa.String(length=100), nullable=False),
        sa.Column("bucket", sa.Float(), nullable=False),
        sa.Column("config_version", sa.String(length=100), nullable=False),
        sa.Column("first_exposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pre_exposure_purchases", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("experiment_key", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("tailor_assignments")
    op.drop_index("ix_tailor_outcomes_decision_id", table_name="tailor_outcomes")
    op.drop_table("tailor_outcomes")
    with op.batch_alter_table("tailor_decisions") as table:
        table.drop_index("ix_tailor_decisions_experiment_key")
        table.drop_column("action_probability")
        table.drop_column("bucket")
        table.drop_column("arm")
        table.drop_column("experiment_key")
