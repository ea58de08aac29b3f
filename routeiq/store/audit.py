"""The audit log: every control-plane action, written synchronously (the action waits for it)."""

from __future__ import annotations

from typing import Any

from routeiq.store.database import Database, unavailable
from routeiq.store.pages import newest_first
from routeiq.store.records import AuditRecord
from routeiq.store.schema import audit_log


class AuditRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def write(self, record: AuditRecord) -> int:
        """Store ``record`` and return its id; ``StoreUnavailable`` on any database failure, so that
        ``audit_failure_mode: closed`` can refuse an action it could not record."""
        values = {
            "at": record.at,
            "actor": record.actor,
            "action": record.action,
            "outcome": record.outcome,
            "target": record.target,
            "request_id": record.request_id,
            "details": record.details,
        }
        try:
            async with self.db.engine.begin() as connection:
                result = await connection.execute(
                    audit_log.insert().values(**values).returning(audit_log.c.id)
                )
                record_id = int(result.scalar_one())
        except Exception as error:  # any failure at all: the caller must know the record is not kept
            raise unavailable(error) from error
        record.id = record_id
        return record.id

    async def set_outcome(self, record_id: int, outcome: str, details: dict[str, Any] | None = None) -> bool:
        """Change a written record's outcome (and details, if given), for an action that was recorded
        before it ran and then failed. False if no record has ``record_id``."""
        values: dict[str, Any] = {"outcome": outcome}
        if details is not None:
            values["details"] = details
        try:
            async with self.db.engine.begin() as connection:
                result = await connection.execute(
                    audit_log.update().where(audit_log.c.id == record_id).values(**values)
                )
        except Exception as error:  # as in write(): the caller must know the change is not kept
            raise unavailable(error) from error
        return result.rowcount > 0

    async def query(
        self,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        cursor: int | None = None,
    ) -> tuple[list[AuditRecord], int | None]:
        """Records newest first, and the cursor of the next page (None: no more).

        ``since`` is inclusive, ``until`` exclusive; ``cursor`` is the previous page's
        ``next_cursor`` (keyset pagination on id: stable while new records arrive).
        """
        rows, next_cursor = await newest_first(
            self.db,
            audit_log,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
        )
        return [AuditRecord(**row) for row in rows], next_cursor
