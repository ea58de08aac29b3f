"""The durable store's tables, as SQLAlchemy Core. Migrations (``migrations/versions``) create them;
this module is what the repositories query. Keep both in step when a column changes."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; PostgreSQL gets 64-bit ids.
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

virtual_keys = sa.Table(
    "virtual_keys",
    metadata,
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
    sa.Index("ix_virtual_keys_key_hash", "key_hash", unique=True),
    sa.Index("ix_virtual_keys_team", "team"),
    sa.Index("ix_virtual_keys_user", "user"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", IdType, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("target", sa.String(512)),
    sa.Column("request_id", sa.String(128)),
    sa.Column("details", JSONType, nullable=False),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_actor", "actor"),
    sa.Index("ix_audit_log_action", "action"),
)

spend_log = sa.Table(
    "spend_log",
    metadata,
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
    sa.Index("ix_spend_log_at", "at"),
    sa.Index("ix_spend_log_key_id", "key_id"),
    sa.Index("ix_spend_log_team", "team"),
    sa.Index("ix_spend_log_group", "group"),
)

# One row per model request (routeiq.store.decisions). Each filter's index leads with it and ends
# with (at, id), the page order, so a filtered page is one short index range scan.
DECISION_FILTER_COLUMNS = ("group", "tier", "strategy", "served_model", "key_id", "team", "outcome")

routing_decisions = sa.Table(
    "routing_decisions",
    metadata,
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
    sa.Column("shadow", JSONType),  # an experiment's shadow arms' decisions (migration 0004)
    sa.Column("prompt", sa.Text),
    sa.Index("ix_routing_decisions_at_id", "at", "id"),
    sa.Index("ix_routing_decisions_request_id", "request_id"),
    *(sa.Index(f"ix_routing_decisions_{name}_at_id", name, "at", "id") for name in DECISION_FILTER_COLUMNS),
)
