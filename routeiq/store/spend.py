"""The spend log: one row per served request, written in batches by a ``LogWriter``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Literal

import sqlalchemy as sa

from routeiq.store.batch_insert import BatchInsert
from routeiq.store.database import Database, unavailable
from routeiq.store.pages import filtered, newest_first
from routeiq.store.records import SpendRecord
from routeiq.store.schema import spend_log

TotalsBy = Literal["key_id", "team", "user", "group"]


# The columns a write fills, named as the record's fields, in the order of its rows' values (``id``
# is the store's own).
_COLUMNS = tuple(f.name for f in fields(SpendRecord) if f.name != "id")


class SpendRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = BatchInsert(spend_log, _COLUMNS)

    async def write_many(self, records: Sequence[SpendRecord]) -> None:
        """Insert a batch in one transaction (all or nothing)."""
        if not records:
            return
        rows = [[getattr(record, column) for column in _COLUMNS] for record in records]
        try:
            async with self.db.engine.begin() as connection:
                await self._insert.run(connection, rows)
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error

    async def query(
        self,
        key_id: str | None = None,
        team: str | None = None,
        user: str | None = None,
        group: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        cursor: int | None = None,
    ) -> tuple[list[SpendRecord], int | None]:
        """Records newest first and the next page's cursor (None: no more); ``since`` inclusive,
        ``until`` exclusive, keyset pagination on id as in the audit log."""
        rows, next_cursor = await newest_first(
            self.db,
            spend_log,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            key_id=key_id,
            team=team,
            user=user,
            group=group,
        )
        return [SpendRecord(**row) for row in rows], next_cursor

    async def totals(
        self,
        by: TotalsBy,
        since: float | None = None,
        until: float | None = None,
        values: Sequence[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Per ``by`` value: cost_usd, input_tokens, output_tokens and requests. Requests without a
        value for ``by`` (say, anonymous ones when totalling by key) are left out; with ``values``,
        only those (a page of keys asks for its own rows, not every key's)."""
        if by not in ("key_id", "team", "user", "group"):
            raise ValueError(f"cannot total spend by {by!r}")
        column = spend_log.c[by]
        query = filtered(
            sa.select(
                column.label("value"),
                sa.func.sum(spend_log.c.cost_usd).label("cost_usd"),
                sa.func.sum(spend_log.c.input_tokens).label("input_tokens"),
                sa.func.sum(spend_log.c.output_tokens).label("output_tokens"),
                sa.func.count().label("requests"),
            )
            .where(column.is_not(None) if values is None else column.in_(list(values)))
            .group_by(column),
            spend_log,
            since,
            until,
        )
        try:
            async with self.db.engine.connect() as connection:
                rows = (await connection.execute(query)).mappings().all()
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error
        return {
            row["value"]: {
                "cost_usd": float(row["cost_usd"] or 0.0),
                "input_tokens": int(row["input_tokens"] or 0),
                "output_tokens": int(row["output_tokens"] or 0),
                "requests": int(row["requests"]),
            }
            for row in rows
        }
