"""Durable records: virtual keys, the audit log and the spend log (SQLite embedded, PostgreSQL when
``ROUTEIQ_DATABASE_URL`` is set)."""
