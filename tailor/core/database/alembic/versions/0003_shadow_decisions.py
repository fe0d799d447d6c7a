"""Shadow decisions: what a shadow arm would have served beside each served decision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tailor_shadow_decisions",
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("experiment_key", sa.String(length=100), nullable=False),
        sa.Column("arm", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("served_variant_id", sa.String(length=100), nullable=False),
        sa.Column("champion_variant_id", sa.String(length=100), nullable=False),
        sa.Column("variant_id", sa.String(length=100), nullable=True),
        sa.Column("action_distribution", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("decision_id", "experiment_key", "arm"),
    )


def downgrade() -> None:
    op.drop_table("tailor_shadow_decisions")
