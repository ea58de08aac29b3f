"""The durable store against real databases: every test runs on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from routeiq.config import load_settings
from routeiq.store.audit import AuditRepository
from routeiq.store.database import Database, StoreConflict, StoreUnavailable, normalise_url
from routeiq.store.keys import KeyRepository
from routeiq.store.log_writer import LogWriter
from routeiq.store.migrations import HEAD_REVISION
from routeiq.store.records import AuditRecord, KeyRecord, SpendRecord
from routeiq.store.spend import SpendRepository
from tests.support.databases import (
    reset_postgres_schema,
)
from tests.support.eventually import eventually
from tests.support.gateway import COMMAND_TIMEOUT_SECONDS

HEAD = Database.head_revision()

UNREACHABLE_POSTGRES = "postgresql://routeiq:s3cret-pw@127.0.0.1:1/nowhere"


@pytest.fixture
async def empty_db(database_url: str) -> AsyncIterator[Database]:
    """A reachable database whose schema was never created: every write fails."""
    database = Database(database_url)
    yield database
    await database.close()


def key(key_id: str, team: str | None = None, user: str | None = None, **fields: Any) -> KeyRecord:
    return KeyRecord(
        key_id=key_id,
        key_hash=f"hash-{key_id}",
        key_prefix=f"sk-{key_id[:4]}",
        team=team,
        user=user,
        **fields,
    )


def spend(at: float, group: str = "auto", **fields: Any) -> SpendRecord:
    values: dict[str, Any] = {
        "at": at,
        "request_id": f"req-{at}",
        "group": group,
        "deployment_id": "dep-1",
        "model": "gpt-mini",
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.25,
    }
    values.update(fields)
    return SpendRecord(**values)


# -- database and migrations --------------------------------------------------------------------


async def test_upgrade_is_idempotent_and_safe_concurrently(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    try:
        assert await first.current_revision() is None
        assert await asyncio.gather(first.upgrade(), second.upgrade()) == [HEAD, HEAD]
        assert await first.upgrade() == HEAD
        assert await second.current_revision() == HEAD
        async with first.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
        assert {"virtual_keys", "audit_log", "spend_log", "alembic_version"} <= tables
        await first.ping()
    finally:
        await first.close()
        await second.close()


def test_the_recorded_head_is_alembics_head() -> None:
    assert HEAD == HEAD_REVISION


async def test_ensure_current_migrates_only_a_database_that_is_behind(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.ensure_current()
        assert await db.current_revision() == HEAD
        await db.ensure_current()  # current: one query, nothing applied
        assert await db.current_revision() == HEAD
    finally:
        await db.close()


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'nested' / 'wal.db'}")  # the directory is created
    try:
        async with db.engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 10_000
    finally:
        await db.close()


def test_urls_are_normalised_to_async_drivers() -> None:
    assert normalise_url("postgres://u:p@h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("postgresql://u:p@h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("postgresql+psycopg2://h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("postgresql+asyncpg://h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("sqlite:///tmp/x.db").drivername == "sqlite+aiosqlite"
    for bad in ("mysql://h/db", "sqlite://", "sqlite:///:memory:", "not a url"):
        with pytest.raises(ValueError):
            normalise_url(bad)


async def test_from_settings_defaults_to_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = load_settings(overrides={"data_dir": str(tmp_path / "data")}, environ={})
    db = Database.from_settings(settings)
    try:
        assert db.backend == "sqlite"
        assert (tmp_path / "data").is_dir()
        assert db.url.database == str(tmp_path / "data" / "routeiq.db")
        await db.upgrade()
        assert (tmp_path / "data" / "routeiq.db").is_file()
    finally:
        await db.close()


async def test_from_settings_uses_database_url_and_hides_its_password(tmp_path: Path) -> None:
    environ = {"ROUTEIQ_DATABASE_URL": UNREACHABLE_POSTGRES, "ROUTEIQ_DATA_DIR": str(tmp_path)}
    db = Database.from_settings(load_settings(environ=environ))
    try:
        assert db.backend == "postgresql"
        assert "s3cret-pw" not in db.display_url and "s3cret-pw" not in repr(db)
        with pytest.raises(StoreUnavailable) as caught:
            await db.ping()
        assert "s3cret-pw" not in str(caught.value)
    finally:
        await db.close()


# -- virtual keys -------------------------------------------------------------------------------


async def test_keys_insert_get_and_lookup_by_hash(db: Database) -> None:
    keys = KeyRepository(db)
    record = key(
        "k1",
        team="red",
        allowed_groups=["auto"],
        limits=[{"metric": "requests", "window": "minute", "limit": 5}],
        metadata={"owner": {"email": "a@example.com"}},
        expires_at=2_000_000_000.5,
    )
    stored = await keys.insert(record)
    assert stored.created_at > 0 and stored.updated_at == stored.created_at

    assert await keys.get("k1") == stored
    assert await keys.by_hash("hash-k1") == stored
    assert await keys.get("missing") is None
    assert await keys.by_hash("hash-missing") is None

    with pytest.raises(StoreConflict):
        await keys.insert(key("k1"))
    with pytest.raises(StoreConflict):
        await keys.insert(KeyRecord(key_id="k2", key_hash="hash-k1", key_prefix="sk-x"))


async def test_keys_list_filters_and_pages(db: Database) -> None:
    keys = KeyRepository(db)
    for index, (team, user) in enumerate([("red", "ann"), ("red", "bob"), ("blue", "ann"), (None, None)]):
        await keys.insert(key(f"k{index}", team=team, user=user, created_at=1000.0 + index))
    await keys.insert(key("revoked", team="red", created_at=2000.0, revoked_at=2001.0))

    def ids(records: Sequence[KeyRecord]) -> list[str]:
        return [record.key_id for record in records]

    assert ids(await keys.list()) == ["k3", "k2", "k1", "k0"]  # newest first
    assert ids(await keys.list(team="red")) == ["k1", "k0"]
    assert ids(await keys.list(team="red", include_revoked=True)) == ["revoked", "k1", "k0"]
    assert ids(await keys.list(user="ann")) == ["k2", "k0"]
    assert ids(await keys.list(team="red", user="bob")) == ["k1"]
    assert ids(await keys.list(limit=2)) == ["k3", "k2"]
    assert ids(await keys.list(limit=2, offset=2)) == ["k1", "k0"]


async def test_keys_update(db: Database) -> None:
    keys = KeyRepository(db)
    before = await keys.insert(key("k1", team="red", created_at=1000.0))
    after = await keys.update(
        "k1",
        name="ci",
        team="blue",
        allowed_models=["gpt-mini"],
        limits=[{"metric": "spend_usd", "window": "day", "limit": 2.5}],
        metadata={"ticket": 7},
        key_hash="hash-new",
        key_prefix="sk-new",
        revoked_at=3000.0,
    )
    assert after is not None
    assert (after.name, after.team, after.allowed_models) == ("ci", "blue", ["gpt-mini"])
    assert after.limits == [{"metric": "spend_usd", "window": "day", "limit": 2.5}]
    assert after.metadata == {"ticket": 7} and after.revoked_at == 3000.0
    assert after.created_at == before.created_at and after.updated_at > before.updated_at
    assert await keys.get("k1") == after
    assert await keys.by_hash("hash-k1") is None
    assert await keys.by_hash("hash-new") == after

    assert await keys.update("missing", name="x") is None
    with pytest.raises(ValueError, match="created_at"):
        await keys.update("k1", created_at=1.0)
    await keys.insert(key("k2"))
    with pytest.raises(StoreConflict):
        await keys.update("k2", key_hash="hash-new")


# -- audit log ----------------------------------------------------------------------------------


async def test_audit_write_query_filters_and_pages(db: Database) -> None:
    audit = AuditRepository(db)
    ids = []
    for index in range(7):
        ids.append(
            await audit.write(
                AuditRecord(
                    actor="admin" if index % 2 == 0 else "master",
                    action="key.create" if index < 4 else "key.revoke",
                    outcome="success" if index != 3 else "failure",
                    at=1000.0 + index,
                    target=f"k{index % 3}",
                    request_id=f"req-{index}",
                    details={"index": index, "nested": {"ok": True}},
                )
            )
        )
    assert ids == sorted(ids) and len(set(ids)) == 7

    records, cursor = await audit.query()
    assert [record.id for record in records] == ids[::-1] and cursor is None  # newest first
    assert records[-1].details == {"index": 0, "nested": {"ok": True}}
    assert records[-1].request_id == "req-0"

    async def indexes(**filters: object) -> list[int]:
        found, _ = await audit.query(**filters)  # type: ignore[arg-type]
        return [record.details["index"] for record in found]

    assert await indexes(actor="master") == [5, 3, 1]
    assert await indexes(action="key.revoke") == [6, 5, 4]
    assert await indexes(target="k1") == [4, 1]
    assert await indexes(outcome="failure") == [3]
    assert await indexes(since=1002.0, until=1005.0) == [4, 3, 2]
    assert await indexes(actor="admin", action="key.create") == [2, 0]

    seen: list[int] = []
    page_cursor: int | None = None
    pages = 0
    while True:
        page, page_cursor = await audit.query(limit=3, cursor=page_cursor)
        seen += [record.details["index"] for record in page]
        pages += 1
        if page_cursor is None:
            break
    assert seen == [6, 5, 4, 3, 2, 1, 0] and pages == 3

    assert await audit.set_outcome(ids[0], "failure", {"error": "boom"}) is True
    assert await audit.set_outcome(10**9, "failure") is False
    changed, _ = await audit.query(outcome="failure")
    assert [(record.id, record.details) for record in changed][-1] == (ids[0], {"error": "boom"})


async def test_audit_write_raises_store_unavailable_when_the_database_fails(empty_db: Database) -> None:
    record = AuditRecord(actor="admin", action="key.create", outcome="success", at=1.0)
    with pytest.raises(StoreUnavailable):
        await AuditRepository(empty_db).write(record)


async def test_audit_write_raises_store_unavailable_when_the_database_is_down() -> None:
    db = Database(UNREACHABLE_POSTGRES)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await AuditRepository(db).write(AuditRecord(actor="a", action="b", outcome="success", at=1.0))
        assert "s3cret-pw" not in str(caught.value)
    finally:
        await db.close()


# -- spend log ----------------------------------------------------------------------------------


async def test_a_large_batch_goes_in_a_few_multi_row_statements_and_reads_back_exactly(db: Database) -> None:
    """450 rows: three INSERT statements (200 rows each at most), not 450; every value as written,
    including a whole-number cost (an int) in the float column and absent key, team and user."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            statements.append(statement)

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        written = [
            spend(2000.0 + i, key_id=f"k{i % 3}" if i % 5 else None, cost_usd=0 if i == 7 else i / 1000)
            for i in range(450)
        ]
        await SpendRepository(db).write_many(written)
    finally:
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert len(statements) == 3
    records, _ = await SpendRepository(db).query(limit=500)
    assert sorted(records, key=lambda record: record.at) == [
        dataclasses.replace(record, id=found.id)
        for record, found in zip(written, sorted(records, key=lambda record: record.at), strict=True)
    ]


async def test_spend_write_query_and_totals(db: Database) -> None:
    repository = SpendRepository(db)
    await repository.write_many([])  # nothing to do, no error
    await repository.write_many(
        [
            spend(1000.0, key_id="k1", team="red", user="ann"),
            spend(1001.0, key_id="k1", team="red", user="ann", cost_usd=0.5, input_tokens=100),
            spend(1002.0, group="premium", key_id="k2", team="blue", user="bob", output_tokens=50),
            spend(1003.0, group="premium"),  # anonymous
        ]
    )
    records, cursor = await repository.query()
    assert [record.at for record in records] == [1003.0, 1002.0, 1001.0, 1000.0] and cursor is None
    assert records[1].model == "gpt-mini" and records[1].id is not None

    async def times(**filters: object) -> list[float]:
        found, _ = await repository.query(**filters)  # type: ignore[arg-type]
        return [record.at for record in found]

    assert await times(key_id="k1") == [1001.0, 1000.0]
    assert await times(team="blue") == [1002.0]
    assert await times(user="ann") == [1001.0, 1000.0]
    assert await times(group="premium") == [1003.0, 1002.0]
    assert await times(since=1001.0, until=1003.0) == [1002.0, 1001.0]

    first, cursor = await repository.query(limit=3)
    assert len(first) == 3 and cursor is not None
    rest, cursor = await repository.query(limit=3, cursor=cursor)
    assert [record.at for record in rest] == [1000.0] and cursor is None

    by_key = await repository.totals("key_id")
    assert by_key == {
        "k1": {"cost_usd": 0.75, "input_tokens": 110, "output_tokens": 10, "requests": 2},
        "k2": {"cost_usd": 0.25, "input_tokens": 10, "output_tokens": 50, "requests": 1},
    }
    assert set(await repository.totals("key_id", values=["k2", "k-none"])) == {"k2"}
    assert set(await repository.totals("team")) == {"red", "blue"}
    assert (await repository.totals("user"))["ann"]["requests"] == 2
    by_group = await repository.totals("group")
    assert by_group["premium"]["requests"] == 2 and by_group["auto"]["requests"] == 2
    assert (await repository.totals("group", since=1001.0, until=1003.0))["auto"]["requests"] == 1
    with pytest.raises(ValueError):
        await repository.totals("model")  # type: ignore[arg-type]


# -- the log writer -----------------------------------------------------------------------------


async def test_log_writer_writes_in_batches_and_close_flushes(db: Database) -> None:
    repository = SpendRepository(db)
    batches: list[int] = []

    async def write_many(records: Sequence[SpendRecord]) -> None:
        batches.append(len(records))
        await repository.write_many(records)

    writer: LogWriter[SpendRecord] = LogWriter(write_many, 5000, batch_size=500, flush_seconds=30)
    for index in range(1200):
        assert writer.submit(spend(float(index)))
    assert writer.pending == 1200
    writer.start()
    await writer.close()
    assert batches == [500, 500, 200]
    assert (writer.written, writer.dropped, writer.failed, writer.pending) == (1200, 0, 0, 0)
    assert (await repository.totals("group"))["auto"]["requests"] == 1200


async def test_log_writer_flushes_a_partial_batch_after_the_interval(db: Database) -> None:
    repository = SpendRepository(db)
    writer: LogWriter[SpendRecord] = LogWriter(repository.write_many, 100, flush_seconds=0.1)
    writer.start()
    try:
        writer.submit(spend(1.0))
        await eventually(lambda: writer.written == 1)  # the first record goes at once: the writer was idle
        writer.submit(spend(2.0))
        writer.submit(spend(3.0))
        await eventually(lambda: writer.written >= 3)
        assert writer.written == 3
        records, _ = await repository.query()
        assert len(records) == 3
    finally:
        await writer.close()


async def test_log_writer_drops_and_counts_when_full(db: Database) -> None:
    drops: list[int] = []
    repository = SpendRepository(db)
    writer: LogWriter[SpendRecord] = LogWriter(repository.write_many, 3, on_drop=drops.append)
    accepted = [writer.submit(spend(float(index))) for index in range(5)]  # not started: nothing drains
    assert accepted == [True, True, True, False, False]
    assert writer.dropped == 2 and drops == [1, 1] and writer.pending == 3
    await writer.close()  # never started: close still writes what is queued
    assert writer.written == 3 and writer.pending == 0
    assert writer.submit(spend(9.0)) is False and writer.dropped == 3  # closed
    records, _ = await repository.query()
    assert len(records) == 3


async def test_log_writer_survives_write_failures(
    empty_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[int] = []
    repository = SpendRepository(empty_db)
    writer: LogWriter[SpendRecord] = LogWriter(
        repository.write_many, 100, flush_seconds=0.05, on_write_error=errors.append, name="spend"
    )
    writer.start()
    with caplog.at_level(logging.ERROR, logger="routeiq.store"):
        assert writer.submit(spend(1.0)) and writer.submit(spend(2.0))
        await eventually(lambda: writer.failed >= 2)
        assert writer.failed == 2 and writer.write_errors >= 1 and sum(errors) == 2
        assert "spend writer: " in caplog.text and "records lost" in caplog.text

        await empty_db.upgrade()  # the database comes back: the same writer carries on
        writer.submit(spend(3.0))
        writer.submit(spend(4.0))
        await writer.close()
    assert writer.written == 2 and writer.failed == 2
    records, _ = await repository.query()
    assert sorted(record.at for record in records) == [3.0, 4.0]


async def test_log_writer_failure_logs_hold_no_secrets(caplog: pytest.LogCaptureFixture) -> None:
    db = Database(UNREACHABLE_POSTGRES)
    writer: LogWriter[SpendRecord] = LogWriter(SpendRepository(db).write_many, 10, name="spend")
    try:
        with caplog.at_level(logging.DEBUG):
            writer.submit(spend(1.0, key_id="k-secretish"))
            await writer.close()
        assert writer.failed == 1 and writer.write_errors == 1
        assert "records lost" in caplog.text
        assert "s3cret-pw" not in caplog.text and "k-secretish" not in caplog.text
    finally:
        await db.close()


async def test_log_writer_close_gives_up_after_its_timeout() -> None:
    release = asyncio.Event()

    async def stuck(records: Sequence[int]) -> None:
        await release.wait()

    writer: LogWriter[int] = LogWriter(stuck, 10, batch_size=2)
    for index in range(5):
        writer.submit(index)
    writer.start()
    started = time.monotonic()
    await writer.close(timeout_seconds=0.2)
    assert time.monotonic() - started < 2
    assert writer.written == 0 and writer.dropped == 3 and writer.pending == 0  # 2 were in flight


# -- the CLI ------------------------------------------------------------------------------------


def cli_env(**values: str) -> dict[str, str]:
    """The test's environment without inherited ROUTEIQ_* settings (as tests/support/gateway.py)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ROUTEIQ_")}
    env.update(values)
    return env


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "routeiq", "db", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_cli_db_upgrade_from_several_processes_at_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        env = cli_env(ROUTEIQ_DATA_DIR=str(tmp_path / "data"))
        url = f"sqlite:///{tmp_path / 'data' / 'routeiq.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        await reset_postgres_schema(url)
        env = cli_env(ROUTEIQ_DATABASE_URL=url, ROUTEIQ_DATA_DIR=str(tmp_path / "unused"))

    before = await asyncio.to_thread(run_cli, env, tmp_path, "current")
    assert before.returncode == 0, before.stderr
    assert "revision none" in before.stdout

    # Three "workers" migrating the same empty database at the same moment.
    results = await asyncio.gather(*(asyncio.to_thread(run_cli, env, tmp_path, "upgrade") for _ in range(3)))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert f"revision {HEAD}" in result.stdout
        assert "Traceback" not in result.stderr

    after = await asyncio.to_thread(run_cli, env, tmp_path, "current")
    assert after.returncode == 0 and f"revision {HEAD} (head {HEAD})" in after.stdout
    db = Database(url)
    try:
        assert await db.current_revision() == HEAD
    finally:
        await db.close()


def test_cli_db_reports_an_unreachable_database_without_its_password(tmp_path: Path) -> None:
    result = run_cli(cli_env(ROUTEIQ_DATABASE_URL=UNREACHABLE_POSTGRES), tmp_path, "upgrade")
    assert result.returncode == 1
    assert "database error" in result.stderr and "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_cli_db_rejects_an_unsupported_url(tmp_path: Path) -> None:
    result = run_cli(cli_env(ROUTEIQ_DATABASE_URL="mysql://h/db"), tmp_path, "current")
    assert result.returncode == 2 and "unsupported database" in result.stderr
