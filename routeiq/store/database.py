"""One connection to the durable store: SQLite by default, PostgreSQL when a URL says so.

``Database`` owns the SQLAlchemy async engine and the schema migrations. It is built once in the
lifespan (``Database.from_settings``) and closed there; the repositories (keys, audit, spend) take
it as their only dependency.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from routeiq.store.migrations import HEAD_REVISION

if TYPE_CHECKING:
    from alembic.config import Config

    from routeiq.settings import Settings

logger = logging.getLogger("routeiq.store")

Backend = Literal["sqlite", "postgresql"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_FILENAME = "routeiq.db"
# How long a SQLite writer waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5.0
# Any constant works: every RouteIQ process upgrading the same database takes the same lock.
POSTGRES_MIGRATION_LOCK = 0x526F757465495121  # "RouteIQ!"
# Execution option read by the SQLite "begin" hook below.
SQLITE_BEGIN_OPTION = "routeiq_sqlite_begin"


class StoreError(Exception):
    """Base class of the durable store's errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or refused the operation. The message holds no secrets."""


class StoreConflict(StoreError):
    """A write broke a uniqueness rule (say, a key id or key hash that already exists)."""


def unavailable(error: BaseException) -> StoreUnavailable:
    """A ``StoreUnavailable`` naming the driver's error class only: SQLAlchemy's messages quote the
    SQL, and connection errors may quote the host; neither belongs in a log line or a response."""
    original = getattr(error, "orig", None) or error
    return StoreUnavailable(f"database error ({type(original).__name__})")


class Database:
    """The async engine for one database URL, plus its migrations."""

    def __init__(self, url: str | URL) -> None:
        self.url = normalise_url(url)
        self.backend: Backend = "sqlite" if self.url.get_backend_name() == "sqlite" else "postgresql"
        self.engine: AsyncEngine = _create_engine(self.url, self.backend)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """``settings.database_url`` if set, else ``<data_dir>/routeiq.db`` (the directory is created)."""
        if settings.database_url is not None:
            return cls(settings.database_url.get_secret_value())
        data_dir = Path(settings.data_dir).expanduser()
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(URL.create("sqlite+aiosqlite", database=str((data_dir / SQLITE_FILENAME).resolve())))

    @property
    def display_url(self) -> str:
        """The URL with its password masked: the only form that may be logged or printed."""
        return self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"

    async def upgrade(self, revision: str = "head") -> str | None:
        """Apply the migrations up to ``revision``; returns the revision the database is then at.

        Safe when several workers start together: PostgreSQL serialises them on an advisory lock
        held for the migration's transaction; SQLite's ``BEGIN IMMEDIATE`` takes the write lock
        up front, so a second process waits (busy timeout) and then finds the schema current.
        """
        try:
            async with self.engine.connect() as connection:
                if self.backend == "sqlite":
                    connection = await connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
                async with connection.begin():
                    if self.backend == "postgresql":
                        await connection.execute(
                            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_MIGRATION_LOCK}
                        )
                    await connection.run_sync(_run_upgrade, revision)
                    return await connection.run_sync(_current_revision)
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error

    async def is_current(self) -> bool:
        """Whether the schema is at this version's newest migration, in one query without Alembic."""
        try:
            async with self.engine.connect() as connection:
                query = sa.text("SELECT version_num FROM alembic_version")
                return bool((await connection.execute(query)).scalar() == HEAD_REVISION)
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError):
            return False  # no version table yet, or unreachable: upgrade() says which

    async def ensure_current(self) -> None:
        """Migrate only if the schema is behind: workers started by ``routeiq serve`` find it
        current (the server migrated before starting them) and never load Alembic."""
        if not await self.is_current():
            await self.upgrade()

    async def current_revision(self) -> str | None:
        """The migration the database is at (None: never migrated)."""
        try:
            async with self.engine.connect() as connection:
                return await connection.run_sync(_current_revision)
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error

    @staticmethod
    def head_revision() -> str | None:
        """The newest migration this version of RouteIQ ships."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(_alembic_config()).get_current_head()

    async def ping(self) -> None:
        """One round trip; raises ``StoreUnavailable`` if the database does not answer."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error

    async def close(self) -> None:
        await self.engine.dispose()


def normalise_url(url: str | URL) -> URL:
    """Map the URLs people write to the async drivers: ``postgres://``, ``postgresql://`` and
    ``postgresql+<driver>://`` to asyncpg; ``sqlite:///path`` to aiosqlite."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        raise ValueError("database_url is not a valid database URL") from None
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("database_url: an in-memory SQLite database is not durable; give a file path")
        return parsed.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"database_url: unsupported database {backend!r} (use postgresql:// or sqlite:///path)")


def _create_engine(url: URL, backend: Backend) -> AsyncEngine:
    # hide_parameters: error messages and logs never show bound values (key hashes, names).
    options: dict[str, Any] = {"hide_parameters": True}
    if backend == "postgresql":
        options |= {
            "pool_pre_ping": True,  # a restarted PostgreSQL leaves dead pooled connections behind
            "connect_args": {"timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
        }
        return create_async_engine(url, **options)
    if url.database:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **options)
    _install_sqlite_hooks(engine)
    return engine


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    """WAL and a busy timeout so that several worker processes share one file, and explicit BEGINs.

    Python's sqlite3 module only opens a transaction before DML, so DDL and plain reads would run
    outside one; SQLAlchemy's recipe turns that off and emits BEGIN itself (``BEGIN IMMEDIATE``
    when a connection asks for it, as the migration does).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable with WAL, without an fsync per commit
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


def _alembic_config() -> Config:
    """Built in code: no alembic.ini is looked up from the working directory."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _run_upgrade(connection: sa.Connection, revision: str) -> None:
    from alembic import command

    config = _alembic_config()
    config.attributes["connection"] = connection  # env.py migrates on this connection
    command.upgrade(config, revision)


def _current_revision(connection: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
