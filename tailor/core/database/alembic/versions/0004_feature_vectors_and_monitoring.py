"""Feature vectors and propensities of decisions, and the results of monitoring runs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Decisions logged before stay without a vector: monitoring reads only newer ones.
    with op.batch_alter_table("tailor_decisions") as table:
        table.add_column(sa.Column("propensity", sa.Float(), nullable=True))
        table.add_column(sa.Column("features", sa.JSON(), nullable=True))
    op.create_table(
        "tailor_monitoring_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decisions", sa.Integer(), nullable=False),
        sa.Column("score_psi", sa.Float(), nullable=True),
        sa.Column("max_feature_psi", sa.Float(), nullable=True),
        sa.Column("max_feature", sa.String(length=200), nullable=True),
        sa.Column("feature_psi", sa.JSON(), nullable=False),
        sa.Column("performance_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("performance_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome_decisions", sa.Integer(), nullable=False),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("auc_live", sa.Float(), nullable=True),
        sa.Column("ece_live", sa.Float(), nullable=True),
        sa.Column("observed_expected", sa.Float(), nullable=True),
        sa.Column("conversion_changes", sa.Integer(), nullable=False),
        sa.Column("last_change_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index(
        "ix_tailor_monitoring_runs_started_at", "tailor_monitoring_runs", ["started_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_tailor_monitoring_runs_started_at", table_name="tailor_monitoring_runs")
    op.drop_table("tailor_monitoring_runs")
    with op.batch_alter_table("tailor_decisions") as table:
        table.drop_column("features")
        table.drop_column("propensity")
