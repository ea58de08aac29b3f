"""Real databases for store tests: a throwaway PostgreSQL database on 127.0.0.1:5432 (failing loudly
if PostgreSQL is down) and SQLite files in the test's tmp directory."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import asyncpg
import pytest

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432

T = TypeVar("T")


def _run(function: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop (pytest-asyncio
    resolves module fixtures from within a test's loop): on a thread with a loop of its own."""

    async def main() -> T:
        return await function()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


async def _admin_connection() -> tuple[asyncpg.Connection, str]:
    """A connection to the ``postgres`` database as ``postgres``, else as the current OS user."""
    errors = []
    for user in dict.fromkeys(("postgres", getpass.getuser())):
        try:
            connection = await asyncpg.connect(
                host=POSTGRES_HOST, port=POSTGRES_PORT, user=user, database="postgres", timeout=5
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as error:
            errors.append(f"{user}: {type(error).__name__}: {error}")
            continue
        return connection, user
    pytest.fail(
        f"PostgreSQL is required at {POSTGRES_HOST}:{POSTGRES_PORT} ({'; '.join(errors)}); "
        "start it with scripts/services.sh"
    )


def create_postgres_database(prefix: str = "routeiq_test") -> tuple[str, str]:
    """Create a uniquely named database; returns (name, ``postgresql://`` URL)."""

    async def create() -> tuple[str, str]:
        connection, user = await _admin_connection()
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return name, f"postgresql://{user}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"

    return _run(create)


def drop_postgres_database(name: str) -> None:
    async def drop() -> None:
        connection, _ = await _admin_connection()
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    _run(drop)


async def reset_postgres_schema(url: str) -> None:
    """Empty the database: every table (Alembic's version table too) goes with the public schema."""
    connection = await asyncpg.connect(url, timeout=5)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


@contextlib.contextmanager
def postgres_database(prefix: str = "routeiq_test") -> Iterator[str]:
    """A fresh PostgreSQL database for the duration of the block; yields its URL."""
    name, url = create_postgres_database(prefix)
    try:
        yield url
    finally:
        drop_postgres_database(name)
