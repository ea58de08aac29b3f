"""Admin: what was spent, from the durable spend log (one row per served request, written off the
request path, so the newest requests appear within about a second)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from routeiq.api.runtime import runtime_of
from routeiq.store.pages import MAX_CURSOR
from routeiq.store.records import SpendRecord

router = APIRouter(prefix="/admin/spend", tags=["admin"])

MAX_VALUES = 1000  # a page of keys (the UI asks for its page's rows only, never every key's)
SpendBy = Literal["key_id", "team", "user", "group"]


class SpendTotal(BaseModel):
    cost_usd: float
    input_tokens: int
    output_tokens: int
    requests: int


class SpendTotals(BaseModel):
    by: SpendBy
    since: float | None
    until: float | None
    totals: dict[str, SpendTotal]  # by value: the key id, team, user or group


class SpendPage(BaseModel):
    object: Literal["list"]
    data: list[SpendRecord]
    next_cursor: int | None


@router.get("", response_model=SpendTotals)
async def spend_totals(
    request: Request,
    by: SpendBy = "team",
    since: float | None = Query(default=None, description="UNIX time, inclusive."),
    until: float | None = Query(default=None, description="UNIX time, exclusive."),
    value: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_VALUES,
            description="Only these keys, teams, users or groups (repeat it: `value=a&value=b`).",
        ),
    ] = None,
) -> dict[str, Any]:
    """Cost (USD), tokens and requests per key, team, user or routing group."""
    totals = await runtime_of(request).spend.totals(by, since=since, until=until, values=value)
    return {"by": by, "since": since, "until": until, "totals": totals}


@router.get("/records", response_model=SpendPage)
async def spend_records(
    request: Request,
    key_id: str | None = None,
    team: str | None = None,
    user: str | None = None,
    group: str | None = None,
    since: float | None = Query(default=None, description="UNIX time, inclusive."),
    until: float | None = Query(default=None, description="UNIX time, exclusive."),
    limit: int = Query(default=100, ge=1, le=1000),
    cursor: int | None = Query(
        default=None, ge=1, le=MAX_CURSOR, description="`next_cursor` of the previous page."
    ),
) -> dict[str, Any]:
    """One record per served request, newest first."""
    records, next_cursor = await runtime_of(request).spend.query(
        key_id=key_id, team=team, user=user, group=group, since=since, until=until, limit=limit, cursor=cursor
    )
    return {"object": "list", "data": [asdict(record) for record in records], "next_cursor": next_cursor}
