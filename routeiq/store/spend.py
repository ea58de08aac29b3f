"""The spend log: one row per served request, written in batches by a ``LogWriter``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import sqlalchemy as sa

from routeiq.store.database import Database, unavailable
from routeiq.store.records import SpendRecord
from routeiq.store.schema import spend_log

TotalsBy = Literal["key_id", "team", "user", "group"]
MAX_PAGE = 1000


class SpendRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def write_many(self, records: Sequence[SpendRecord]) -> None:
        """Insert a batch in one transaction (all or nothing)."""
        if not records:
            return
        rows = [
            {
                "at": record.at,
                "request_id": record.request_id,
                "group": record.group,
                "deployment_id": record.deployment_id,
                "model": record.model,
                "input_tokens": record.input_tokens,
                "output_tokens": record.output_tokens,
                "cost_usd": record.cost_usd,
                "key_id": record.key_id,
                "team": record.team,
                "user": record.user,
            }
            for record in records
        ]
        try:
            async with self.db.engine.begin() as connection:
                await connection.execute(spend_log.insert(), rows)
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
        limit = min(max(limit, 1), MAX_PAGE)
        query = _filtered(
            sa.select(spend_log).order_by(spend_log.c.id.desc()).limit(limit + 1),
            key_id=key_id,
            team=team,
            user=user,
            group=group,
            since=since,
            until=until,
        )
        if cursor is not None:
            query = query.where(spend_log.c.id < cursor)
        try:
            async with self.db.engine.connect() as connection:
                rows = (await connection.execute(query)).mappings().all()
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error
        records = [SpendRecord(**dict(row)) for row in rows[:limit]]
        next_cursor = records[-1].id if len(rows) > limit else None
        return records, next_cursor

    async def totals(
        self, by: TotalsBy, since: float | None = None, until: float | None = None
    ) -> dict[str, dict[str, Any]]:
        """Per ``by`` value: cost_usd, input_tokens, output_tokens and requests. Requests without a
        value for ``by`` (say, anonymous ones when totalling by key) are left out."""
        if by not in ("key_id", "team", "user", "group"):
            raise ValueError(f"cannot total spend by {by!r}")
        column = spend_log.c[by]
        query = _filtered(
            sa.select(
                column.label("value"),
                sa.func.sum(spend_log.c.cost_usd).label("cost_usd"),
                sa.func.sum(spend_log.c.input_tokens).label("input_tokens"),
                sa.func.sum(spend_log.c.output_tokens).label("output_tokens"),
                sa.func.count().label("requests"),
            )
            .where(column.is_not(None))
            .group_by(column),
            since=since,
            until=until,
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


def _filtered(query: sa.Select[Any], since: float | None, until: float | None, **equal: str | None) -> Any:
    for name, value in equal.items():
        if value is not None:
            query = query.where(spend_log.c[name] == value)
    if since is not None:
        query = query.where(spend_log.c.at >= since)
    if until is not None:
        query = query.where(spend_log.c.at < until)
    return query
