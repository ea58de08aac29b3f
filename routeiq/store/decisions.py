"""The decision store: one row per model request, as the request ledger recorded it, written in
batches by a ``LogWriter``, read newest first in keyset pages, and pruned past its retention.

Pages are keyed on ``(at, id)``: ``at`` is when the request arrived, ``id`` the row's own number,
which breaks ties and keeps a page stable while new rows arrive (a client's ``x-request-id`` is
not unique, so it cannot be the key). The cursor handed to clients is that pair, opaque. Every
filter has an index that leads with it and then ``(at, id)``, so a page costs one index range
scan of ``limit`` rows whatever the table's size; nothing ever pages with OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import orjson
import sqlalchemy as sa

from routeiq.periodic import every, stop
from routeiq.store.batch_insert import BatchInsert
from routeiq.store.database import Database, unavailable
from routeiq.store.records import DecisionRecord
from routeiq.store.schema import routing_decisions

logger = logging.getLogger("routeiq.store")

MAX_PAGE = 500
PRUNE_BATCH = 5_000  # rows per DELETE: a short write lock each, never one long one over a day's rows
PRUNE_EVERY_SECONDS = 600.0
DAY_SECONDS = 86_400.0


# ``time`` is stored as ``at``, as in the other log tables (and a reserved word in SQL).
_COLUMN_OF = {"time": "at"}
_FIELD_OF = {column: name for name, column in _COLUMN_OF.items()}


@dataclass(frozen=True, slots=True)
class DecisionFilters:
    """Equality filters (None: any) and a time range, ``since`` inclusive, ``until`` exclusive."""

    since: float | None = None
    until: float | None = None
    group: str | None = None
    tier: str | None = None
    strategy: str | None = None
    served_model: str | None = None
    key_id: str | None = None
    team: str | None = None
    outcome: str | None = None
    request_id: str | None = None


_EQUAL_FILTERS = ("group", "tier", "strategy", "served_model", "key_id", "team", "outcome", "request_id")


class BadCursor(ValueError):
    """A cursor this store did not hand out."""


def encode_cursor(at: float, row_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([at, row_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, row_id = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, TypeError, UnicodeEncodeError, binascii.Error, orjson.JSONDecodeError):
        raise BadCursor("cursor: not a cursor this endpoint returned") from None
    if (
        not isinstance(at, int | float)
        or isinstance(at, bool)
        or not math.isfinite(at)
        or not isinstance(row_id, int)
        or isinstance(row_id, bool)
        or not 0 <= row_id < 2**63
    ):
        raise BadCursor("cursor: not a cursor this endpoint returned")
    return float(at), row_id


# (record field, column) pairs; read with getattr, since ``asdict`` deep-copies every list and dict
# and costs more than the whole insert.
_COLUMNS = tuple((f.name, _COLUMN_OF.get(f.name, f.name)) for f in fields(DecisionRecord) if f.name != "id")
# The JSON columns go in as text serialised by orjson: the JSON type's own ``json.dumps`` was the
# largest part of an insert's CPU, and that CPU is the gateway's. (SQLite keeps JSON as text;
# PostgreSQL reads the text as the column's jsonb.)
_JSON_POSITIONS = tuple(
    index
    for index, (_, column) in enumerate(_COLUMNS)
    if isinstance(routing_decisions.c[column].type, sa.JSON)
)
_FIELD_NAMES = tuple(name for name, _ in _COLUMNS)


def _row(record: DecisionRecord) -> list[Any]:
    """The record's values in ``_COLUMNS`` order."""
    values = [getattr(record, name) for name in _FIELD_NAMES]
    for index in _JSON_POSITIONS:
        values[index] = _json_text(values[index])
    return values


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _record(row: sa.RowMapping) -> DecisionRecord:
    values = {_FIELD_OF.get(str(name), str(name)): value for name, value in row.items()}
    return DecisionRecord(**values)


class DecisionRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = BatchInsert(routing_decisions, [column for _, column in _COLUMNS])

    async def write_many(self, records: Sequence[DecisionRecord]) -> None:
        """Insert a batch in one transaction (all or nothing)."""
        if not records:
            return
        try:
            async with self.db.engine.begin() as connection:
                await self._insert.run(connection, [_row(record) for record in records])
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error

    async def page(
        self, filters: DecisionFilters, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[DecisionRecord], str | None]:
        """Records newest first, and the next page's cursor (None: no more). ``BadCursor`` for a
        cursor that does not decode."""
        table = routing_decisions
        limit = min(max(limit, 1), MAX_PAGE)
        query = sa.select(table).order_by(table.c.at.desc(), table.c.id.desc()).limit(limit + 1)
        for name in _EQUAL_FILTERS:
            value = getattr(filters, name)
            if value is not None:
                query = query.where(table.c[name] == value)
        if filters.since is not None:
            query = query.where(table.c.at >= filters.since)
        if filters.until is not None:
            query = query.where(table.c.at < filters.until)
        if cursor is not None:
            at, row_id = decode_cursor(cursor)
            # Spelled so that both databases read it as a range on the (..., at, id) index.
            query = query.where(table.c.at <= at, sa.or_(table.c.at < at, table.c.id < row_id))
        rows = await self._fetch(query)
        page = rows[:limit]
        last = page[-1] if page else None
        next_cursor = encode_cursor(last.time, last.id) if last and last.id and len(rows) > limit else None
        return page, next_cursor

    async def get(self, request_id: str) -> DecisionRecord | None:
        """The newest record of ``request_id`` (a client may send the same id twice)."""
        table = routing_decisions
        query = (
            sa.select(table)
            .where(table.c.request_id == request_id)
            .order_by(table.c.at.desc(), table.c.id.desc())
            .limit(1)
        )
        rows = await self._fetch(query)
        return rows[0] if rows else None

    async def delete_older_than(self, cutoff: float, batch: int = PRUNE_BATCH) -> int:
        """Delete every record from before ``cutoff``, ``batch`` rows per transaction; returns how many."""
        table = routing_decisions
        oldest = sa.select(table.c.id).where(table.c.at < cutoff).order_by(table.c.at).limit(batch)
        deleted = 0
        while True:
            try:
                async with self.db.engine.begin() as connection:
                    result = await connection.execute(
                        table.delete().where(table.c.id.in_(oldest.scalar_subquery()))
                    )
            except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
                raise unavailable(error) from error
            deleted += result.rowcount
            if result.rowcount < batch:
                return deleted

    async def _fetch(self, query: sa.Select[Any]) -> list[DecisionRecord]:
        try:
            async with self.db.engine.connect() as connection:
                rows = (await connection.execute(query)).mappings().all()
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error
        return [_record(row) for row in rows]


class DecisionRetention:
    """Deletes records older than ``days``, every ``PRUNE_EVERY_SECONDS``, off the request path.

    Every worker runs it; the deletes are idempotent, so running twice costs one empty query."""

    def __init__(self, repository: DecisionRepository, days: float) -> None:
        self._repository = repository
        self._days = days
        self._task: Any = None

    async def prune(self) -> int:
        deleted = await self._repository.delete_older_than(time.time() - self._days * DAY_SECONDS)
        if deleted:
            logger.info("decision store: %d records past %g days deleted", deleted, self._days)
        return deleted

    def start(self) -> None:
        self._task = every(PRUNE_EVERY_SECONDS, self.prune, "decision retention")

    async def close(self) -> None:
        if self._task is not None:
            await stop([self._task])
