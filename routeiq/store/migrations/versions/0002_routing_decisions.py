"""The decision store: one row per model request, with an index per filter ending in (at, id).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Spelled out here rather than imported from schema.py: a migration is a frozen snapshot.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FILTER_COLUMNS = ("group", "tier", "strategy", "served_model", "key_id", "team", "outcome")


def upgrade() -> None:
    op.create_table(
        "routing_decisions",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("route", sa.String(256), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("outcome_detail", sa.String(32), nullable=False),
        sa.Column("group", sa.String(256)),
        sa.Column("requested_group", sa.String(256)),
        sa.Column("strategy", sa.String(128)),
        sa.Column("profile", sa.String(128)),
        sa.Column("tier", sa.String(64)),
        sa.Column("served_model", sa.String(256)),
        sa.Column("deployment", sa.String(256)),
        sa.Column("reason", sa.Text),
        sa.Column("candidates", JSONType, nullable=False),
        sa.Column("fallbacks", JSONType, nullable=False),
        sa.Column("attempted", JSONType, nullable=False),
        sa.Column("skipped", JSONType, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error_code", sa.String(128)),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("routing_ms", sa.Float),
        sa.Column("routing_overhead_ms", sa.Float),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("team", sa.String(256)),
        sa.Column("user", sa.String(256)),
        sa.Column("assessment", JSONType),
        sa.Column("experiment", sa.String(256)),
        sa.Column("arm", sa.String(256)),
        sa.Column("prompt", sa.Text),
    )
    op.create_index("ix_routing_decisions_at_id", "routing_decisions", ["at", "id"])
    op.create_index("ix_routing_decisions_request_id", "routing_decisions", ["request_id"])
    for name in FILTER_COLUMNS:
        op.create_index(f"ix_routing_decisions_{name}_at_id", "routing_decisions", [name, "at", "id"])


def downgrade() -> None:
    op.drop_table("routing_decisions")
