"""Initial schema: virtual keys, the audit log and the spend log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Spelled out here rather than imported from schema.py: a migration is a frozen snapshot.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "virtual_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("key_prefix", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256)),
        sa.Column("team", sa.String(256)),
        sa.Column("user", sa.String(256)),
        sa.Column("allowed_groups", JSONType, nullable=False),
        sa.Column("allowed_models", JSONType, nullable=False),
        sa.Column("limits", JSONType, nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
        sa.Column("created_by", sa.String(256)),
    )
    op.create_index("ix_virtual_keys_key_hash", "virtual_keys", ["key_hash"], unique=True)
    op.create_index("ix_virtual_keys_team", "virtual_keys", ["team"])
    op.create_index("ix_virtual_keys_user", "virtual_keys", ["user"])

    op.create_table(
        "audit_log",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("target", sa.String(512)),
        sa.Column("request_id", sa.String(128)),
        sa.Column("details", JSONType, nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])

    op.create_table(
        "spend_log",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("group", sa.String(256), nullable=False),
        sa.Column("deployment_id", sa.String(256), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("team", sa.String(256)),
        sa.Column("user", sa.String(256)),
    )
    op.create_index("ix_spend_log_at", "spend_log", ["at"])
    op.create_index("ix_spend_log_key_id", "spend_log", ["key_id"])
    op.create_index("ix_spend_log_team", "spend_log", ["team"])
    op.create_index("ix_spend_log_group", "spend_log", ["group"])


def downgrade() -> None:
    op.drop_table("spend_log")
    op.drop_table("audit_log")
    op.drop_table("virtual_keys")
