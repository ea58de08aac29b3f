"""Alembic migrations of the durable store (run by ``Database.upgrade`` / ``routeiq db upgrade``)."""

# The newest migration. Workers compare the database with it in one query and import Alembic (about
# 9 MB per process) only when there is something to apply; a test checks it is Alembic's head.
HEAD_REVISION = "0004"
