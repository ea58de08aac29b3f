"""Alembic's entry point. ``Database.upgrade`` hands over an open connection (already inside the
transaction that holds the migration lock): migrate on it, never open another."""

from __future__ import annotations

from alembic import context

from routeiq.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through routeiq.store.database.Database.upgrade (or `routeiq db upgrade`)"
    )

context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
