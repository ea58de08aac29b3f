"""Admin: read the audit trail, newest first, with filters and cursor pagination."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from routeiq.api.runtime import runtime_of
from routeiq.store.pages import MAX_CURSOR
from routeiq.store.records import AuditRecord

router = APIRouter(prefix="/admin", tags=["admin"])


class AuditPage(BaseModel):
    object: Literal["list"]
    data: list[AuditRecord]
    next_cursor: int | None


@router.get("/audit", response_model=AuditPage)
async def read_audit(
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    outcome: Literal["success", "failure", "denied"] | None = None,
    since: float | None = Query(default=None, description="UNIX time, inclusive."),
    until: float | None = Query(default=None, description="UNIX time, exclusive."),
    limit: int = Query(default=50, ge=1, le=500),
    cursor: int | None = Query(
        default=None, ge=1, le=MAX_CURSOR, description="`next_cursor` of the previous page."
    ),
) -> dict[str, Any]:
    records, next_cursor = await runtime_of(request).audit_log.query(
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return {"object": "list", "data": [asdict(record) for record in records], "next_cursor": next_cursor}
