"""Reading a log table (audit, spend): filters on equal columns and a time range, newest first, in
pages by keyset on the id, so that a page stays stable while new records arrive."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from routeiq.store.database import Database, unavailable

MAX_PAGE = 1000
MAX_CURSOR = 2**63 - 1  # ids are 64-bit: a larger cursor would overflow the query, not page it


def filtered(
    query: sa.Select[Any], table: sa.Table, since: float | None, until: float | None, **equal: str | None
) -> sa.Select[Any]:
    """``query`` limited to rows whose columns equal the given values (None: any) and whose ``at``
    is in ``[since, until)``."""
    for name, value in equal.items():
        if value is not None:
            query = query.where(table.c[name] == value)
    if since is not None:
        query = query.where(table.c.at >= since)
    if until is not None:
        query = query.where(table.c.at < until)
    return query


async def newest_first(
    db: Database,
    table: sa.Table,
    *,
    since: float | None,
    until: float | None,
    limit: int,
    cursor: int | None,
    **equal: str | None,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of rows, and the cursor of the next page (None: no more). ``cursor`` is the
    previous page's ``next_cursor``."""
    limit = min(max(limit, 1), MAX_PAGE)
    query = filtered(
        sa.select(table).order_by(table.c.id.desc()).limit(limit + 1), table, since, until, **equal
    )
    if cursor is not None:
        query = query.where(table.c.id < cursor)
    try:
        async with db.engine.connect() as connection:
            rows = [dict(row) for row in (await connection.execute(query)).mappings().all()]
    except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
        raise unavailable(error) from error
    page = rows[:limit]
    return page, (page[-1]["id"] if len(rows) > limit else None)
