"""Admin: the decision store, one record per model request as the router recorded it, newest first,
filtered and paged by an opaque keyset cursor (records appear within about a second: they are
written in batches off the request path)."""

from __future__ import annotations

from dataclasses import fields
from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from routeiq.api.errors import APIError, bad_request
from routeiq.api.runtime import runtime_of
from routeiq.store.decisions import MAX_PAGE, BadCursor, DecisionFilters
from routeiq.store.records import DecisionRecord

router = APIRouter(prefix="/admin/routing-decisions", tags=["admin"])

Outcome = Literal["served", "failed", "refused", "shed"]


class Candidate(BaseModel):
    deployment: str
    model: str
    tier: str | None = None
    score: float | None = Field(
        default=None, description="What the strategy ranked by (lowest wins); null if it does not rank."
    )
    chosen: bool = False


class Attempt(BaseModel):
    deployment: str
    group: str
    status: int
    error_code: str | None = None


class Assessment(BaseModel):
    category: str
    p_strong: float
    confidence: float
    scorer: str


class Decision(BaseModel):
    request_id: str
    time: float = Field(description="When the request arrived (UNIX seconds).")
    route: str
    group: str | None = Field(description="The group that served, else the group asked for.")
    requested_group: str | None
    strategy: str | None
    profile: str | None
    tier: str | None
    served_model: str | None
    deployment: str | None
    reason: str | None
    candidates: list[Candidate] = Field(description="What the last attempt's strategy chose from.")
    fallbacks: list[str] = Field(description="Fallback groups an attempt was made in, in order.")
    attempted: list[Attempt] = Field(
        description="Each deployment tried, in order (the one that answered last)."
    )
    skipped: dict[str, str] = Field(description="Groups where nothing was tried, and why.")
    attempts: int
    status: int
    outcome: Outcome
    outcome_detail: str = Field(description="ok, rejected, shed, failed, interrupted or client_disconnected.")
    error_code: str | None
    latency_ms: float
    routing_ms: float | None
    routing_overhead_ms: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    key_id: str | None
    team: str | None
    user: str | None
    assessment: Assessment | None
    experiment: str | None
    arm: str | None
    prompt: str | None = Field(description="Only with log_prompts on.")


class DecisionPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[Decision]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: no more.")


def _decision(record: DecisionRecord) -> Decision:
    # getattr, not asdict: asdict deep-copies every candidate and attempt of a 500-record page.
    return Decision.model_validate({f.name: getattr(record, f.name) for f in fields(record)})


def _time(name: str, value: float | None) -> float | None:
    if value is not None and not -1e12 < value < 1e12:  # NaN and inf fail both comparisons
        raise bad_request(f"{name}: must be a UNIX time in seconds", param=name)
    return value


@router.get("", response_model=DecisionPage)
async def list_decisions(
    request: Request,
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(
        default=None, max_length=200, description="`next_cursor` of the previous page."
    ),
    since: float | None = Query(default=None, description="UNIX time, inclusive."),
    until: float | None = Query(default=None, description="UNIX time, exclusive."),
    group: str | None = Query(default=None, max_length=256),
    tier: str | None = Query(default=None, max_length=64),
    strategy: str | None = Query(default=None, max_length=128),
    model: str | None = Query(default=None, max_length=256, description="The served model."),
    key_id: str | None = Query(default=None, max_length=64),
    team: str | None = Query(default=None, max_length=256),
    outcome: Outcome | None = None,
    request_id: str | None = Query(default=None, max_length=128),
) -> DecisionPage:
    """Routing decisions, newest first."""
    filters = DecisionFilters(
        since=_time("since", since),
        until=_time("until", until),
        group=group,
        tier=tier,
        strategy=strategy,
        served_model=model,
        key_id=key_id,
        team=team,
        outcome=outcome,
        request_id=request_id,
    )
    if since is not None and until is not None and until < since:
        raise bad_request("until: must not be before since", param="until")
    try:
        records, next_cursor = await runtime_of(request).decision_records.page(filters, limit, cursor)
    except BadCursor as error:
        raise bad_request(str(error), param="cursor") from None
    return DecisionPage(data=[_decision(record) for record in records], next_cursor=next_cursor)


@router.get("/{request_id:path}", response_model=Decision)  # a client's request id may hold "/"
async def get_decision(request: Request, request_id: str) -> Decision:
    """One request's decision (the newest, should a client have sent the same request id twice)."""
    record = await runtime_of(request).decision_records.get(request_id)
    if record is None:
        raise APIError(
            404,
            f"no routing decision for request {request_id!r}",
            code="decision_not_found",
            param="request_id",
        )
    return _decision(record)
