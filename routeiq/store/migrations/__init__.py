"""Alembic migrations of the durable store (run by ``Database.upgrade`` / ``routeiq db upgrade``)."""
