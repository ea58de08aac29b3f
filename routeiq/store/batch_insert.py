"""Insert a batch of log rows in a few multi-row ``INSERT ... VALUES (...), (...)`` statements.

The spend log and the decision store write hundreds of rows per batch. An ``executemany`` runs one
statement per row, and Python's sqlite3 gives the GIL up and takes it back around each row's step:
with the SQLite store that is two thread switches per row, paid by the event loop serving requests
(measured: ~70 µs of the loop's CPU per request). One statement per ``ROWS_PER_STATEMENT`` rows
pays that once per statement. The statements are plain SQL in the driver's own parameter style,
built once per row count and reused, so no row goes through SQLAlchemy's per-parameter processing
either: the rows must already hold what the driver takes (JSON columns as text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

ROWS_PER_STATEMENT = 200
# SQLite (since 3.32) and PostgreSQL both take at most 32766 parameters in one statement.
MAX_PARAMETERS = 32_766


class BatchInsert:
    """Rows of ``columns`` (sequences of values in that order) into ``table``."""

    def __init__(self, table: sa.Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.rows_per_statement = max(1, min(ROWS_PER_STATEMENT, MAX_PARAMETERS // len(self.columns)))
        self._statements: dict[tuple[str, int], str] = {}  # (dialect name, rows) -> SQL

    async def run(self, connection: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert every row (in the caller's transaction)."""
        step = self.rows_per_statement
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            parameters = tuple(value for row in chunk for value in row)
            await connection.exec_driver_sql(self._statement(connection.dialect, len(chunk)), parameters)

    def _statement(self, dialect: Dialect, rows: int) -> str:
        key = (dialect.name, rows)
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = self._build(dialect, rows)
        return statement

    def _build(self, dialect: Dialect, rows: int) -> str:
        quote = dialect.identifier_preparer.quote
        width = len(self.columns)
        marks = [placeholder(dialect.paramstyle, index) for index in range(rows * width)]
        values = ", ".join(
            "(" + ", ".join(marks[row * width : (row + 1) * width]) + ")" for row in range(rows)
        )
        names = ", ".join(quote(column) for column in self.columns)
        return f"INSERT INTO {quote(self.table.name)} ({names}) VALUES {values}"


def placeholder(paramstyle: str, index: int) -> str:
    """The driver's marker for the ``index``-th (0-based) positional parameter."""
    if paramstyle == "qmark":  # sqlite3 / aiosqlite
        return "?"
    if paramstyle == "numeric_dollar":  # asyncpg
        return f"${index + 1}"
    raise ValueError(f"no batch insert for the {paramstyle!r} parameter style")
