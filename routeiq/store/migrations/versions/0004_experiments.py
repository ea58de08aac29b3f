"""Experiments: each experiment's definition (so experiments survive a cold restart), the feedback
callers give on their requests (one row per request: a second feedback replaces the first), and the
shadow arms' decisions on each routing decision record.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Spelled out here rather than imported from the store: a migration is a frozen snapshot.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("group", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("definition", JSONType, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "request_feedback",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("key_id", sa.String(64)),
        sa.Column("team", sa.String(256)),
        sa.Column("experiment", sa.String(64)),
        sa.Column("arm", sa.String(256)),
        sa.Index("ix_request_feedback_experiment", "experiment"),
    )
    with op.batch_alter_table("routing_decisions") as batch:
        batch.add_column(sa.Column("shadow", JSONType))


def downgrade() -> None:
    with op.batch_alter_table("routing_decisions") as batch:
        batch.drop_column("shadow")
    op.drop_table("request_feedback")
    op.drop_table("experiments")
