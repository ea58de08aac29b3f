"""Databases for the store tests: each test runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from routeiq.store.database import Database
from tests.support.databases import create_postgres_database, drop_postgres_database, reset_postgres_schema


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    name, url = create_postgres_database()
    yield url
    drop_postgres_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no tables) of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    await reset_postgres_schema(url)
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A database of each backend, migrated to the newest schema."""
    database = Database(database_url)
    await database.upgrade()
    yield database
    await database.close()
