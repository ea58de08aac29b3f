"""Admin: virtual keys. ``POST /admin/keys`` shows the secret once; every change is audited."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from routeiq.api.errors import APIError
from routeiq.api.runtime import runtime_of
from routeiq.governance.call import current_call
from routeiq.governance.keys import KeyNotUsable
from routeiq.governance.limits import MAX_BUDGET_USD, MAX_COUNT_LIMIT, Limit, WindowName
from routeiq.store.records import KeyRecord

router = APIRouter(prefix="/admin/keys", tags=["admin"])

# Deeper than any key table; past it SQLite and PostgreSQL overflow their 64-bit OFFSET.
MAX_OFFSET = 10**9


class KeyFields(BaseModel):
    """What describes a key. ``rpm_limit``, ``tpm_limit`` and ``budget_usd`` are shorthands for
    entries of ``limits``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    team: str | None = Field(default=None, max_length=200)
    user: str | None = Field(default=None, max_length=200)
    allowed_groups: list[str] | None = None
    allowed_models: list[str] | None = None
    rpm_limit: int | None = Field(default=None, ge=0, le=MAX_COUNT_LIMIT, description="Requests per minute.")
    tpm_limit: int | None = Field(
        default=None, ge=0, le=MAX_COUNT_LIMIT, description="Total tokens per minute."
    )
    budget_usd: float | None = Field(
        default=None,
        ge=0,
        le=MAX_BUDGET_USD,
        allow_inf_nan=False,
        description="Spend allowed per budget_window.",
    )
    budget_window: WindowName = "month"
    limits: list[Limit] | None = None
    expires_at: float | None = Field(
        default=None, allow_inf_nan=False, description="UNIX time the key stops working."
    )
    expires_in_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyFields:
        if self.expires_at is not None and self.expires_in_seconds is not None:
            raise ValueError("give expires_at or expires_in_seconds, not both")
        return self

    def changes(self) -> dict[str, Any]:
        """The stored fields this request sets (only those it mentions)."""
        given = self.model_fields_set
        changes: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("name", "team", "user", "allowed_groups", "allowed_models", "metadata")
            if name in given
        }
        for name in ("allowed_groups", "allowed_models"):
            if name in changes and changes[name] is None:
                changes[name] = []
        if "metadata" in changes and changes["metadata"] is None:
            changes["metadata"] = {}
        limits = self._limits()
        if limits is not None:
            changes["limits"] = [limit.model_dump() for limit in limits]
        if "expires_at" in given:
            changes["expires_at"] = self.expires_at
        if self.expires_in_seconds is not None:
            changes["expires_at"] = time.time() + self.expires_in_seconds
        return changes

    def _limits(self) -> list[Limit] | None:
        shorthand = {"rpm_limit", "tpm_limit", "budget_usd", "limits"} & self.model_fields_set
        if not shorthand:
            return None
        limits = list(self.limits or [])
        if self.rpm_limit is not None:
            limits.append(Limit(metric="requests", window="minute", limit=self.rpm_limit))
        if self.tpm_limit is not None:
            limits.append(Limit(metric="total_tokens", window="minute", limit=self.tpm_limit))
        if self.budget_usd is not None:
            limits.append(Limit(metric="spend_usd", window=self.budget_window, limit=self.budget_usd))
        return limits


class KeyView(BaseModel):
    """A key as the API shows it: everything but the hash (and the secret, shown once on issue)."""

    key_id: str
    key_prefix: str
    status: Literal["active", "expired", "revoked"]
    name: str | None
    team: str | None
    user: str | None
    allowed_groups: list[str]
    allowed_models: list[str]
    limits: list[Limit]
    metadata: dict[str, Any]
    created_at: float
    updated_at: float
    expires_at: float | None
    revoked_at: float | None
    created_by: str | None


class IssuedKey(KeyView):
    key: str  # the secret: this response is the only place it ever appears


class KeyList(BaseModel):
    object: Literal["list"]
    data: list[KeyView]


def key_view(record: KeyRecord, now: float | None = None) -> dict[str, Any]:
    """A key as the API shows it: everything but the hash."""
    now = time.time() if now is None else now
    if record.revoked_at is not None:
        status = "revoked"
    elif record.expires_at is not None and record.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    return {
        "key_id": record.key_id,
        "key_prefix": record.key_prefix,
        "status": status,
        "name": record.name,
        "team": record.team,
        "user": record.user,
        "allowed_groups": record.allowed_groups,
        "allowed_models": record.allowed_models,
        "limits": record.limits,
        "metadata": record.metadata,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "created_by": record.created_by,
    }


def _not_found(key_id: str) -> APIError:
    return APIError(404, f"no key {key_id!r}", code="key_not_found", param="key_id")


def _check_groups(request: Request, fields: KeyFields) -> None:
    deployments = runtime_of(request).deployments
    unknown = [group for group in fields.allowed_groups or [] if not deployments.has_group(group)]
    if unknown:
        raise APIError(400, f"allowed_groups: unknown group(s) {unknown}", param="allowed_groups")


@router.post("", status_code=201, response_model=IssuedKey)
async def create_key(fields: KeyFields, request: Request) -> dict[str, Any]:
    """Issue a key. The response is the only place the secret ever appears."""
    _check_groups(request, fields)
    runtime = runtime_of(request)
    call = current_call(request.scope)
    actor = call.identity.actor if call is not None else "unknown"
    async with runtime.audit.action(request, "key.create", None, {"team": fields.team}) as entry:
        record, secret = await runtime.keys.create(fields.changes(), created_by=actor)
        entry.details["key_id"] = record.key_id
    return {**key_view(record), "key": secret}


@router.get("", response_model=KeyList)
async def list_keys(
    request: Request,
    team: str | None = None,
    user: str | None = None,
    include_revoked: bool = False,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
) -> dict[str, Any]:
    """Keys, newest first, without secrets or hashes."""
    records = await runtime_of(request).keys.list(
        team=team, user=user, include_revoked=include_revoked, limit=limit, offset=offset
    )
    now = time.time()
    return {"object": "list", "data": [key_view(record, now) for record in records]}


@router.get("/{key_id}", response_model=KeyView)
async def get_key(key_id: str, request: Request) -> dict[str, Any]:
    record = await runtime_of(request).keys.get(key_id)
    if record is None:
        raise _not_found(key_id)
    return key_view(record)


@router.patch("/{key_id}", response_model=KeyView)
async def update_key(key_id: str, fields: KeyFields, request: Request) -> dict[str, Any]:
    """Change a key's team, user, allowed groups/models, limits, expiry or metadata."""
    _check_groups(request, fields)
    changes = fields.changes()
    runtime = runtime_of(request)
    async with runtime.audit.action(request, "key.update", key_id, {"fields": sorted(changes)}):
        record = await runtime.keys.update(key_id, changes)
        if record is None:
            raise _not_found(key_id)
    return key_view(record)


@router.post("/{key_id}/rotate", response_model=IssuedKey)
async def rotate_key(key_id: str, request: Request) -> dict[str, Any]:
    """A new secret for the key (shown once); the old secret stops working at once."""
    runtime = runtime_of(request)
    async with runtime.audit.action(request, "key.rotate", key_id):
        try:
            rotated = await runtime.keys.rotate(key_id)
        except KeyNotUsable as refused:  # a new secret for a dead key would be dead on arrival
            raise APIError(409, str(refused), code=refused.code, param="key_id") from None
        if rotated is None:
            raise _not_found(key_id)
    record, secret = rotated
    return {**key_view(record), "key": secret}


async def _revoke(key_id: str, request: Request) -> dict[str, Any]:
    runtime = runtime_of(request)
    async with runtime.audit.action(request, "key.revoke", key_id):
        record = await runtime.keys.revoke(key_id)
        if record is None:
            raise _not_found(key_id)
    return key_view(record)


@router.post("/{key_id}/revoke", response_model=KeyView)
async def revoke_key(key_id: str, request: Request) -> dict[str, Any]:
    """Revoke a key on every worker and replica at once. The record stays, for the audit trail."""
    return await _revoke(key_id, request)


@router.delete("/{key_id}", response_model=KeyView)
async def delete_key(key_id: str, request: Request) -> dict[str, Any]:
    """The same as revoke: keys are never erased, so spend and audit records keep their meaning."""
    return await _revoke(key_id, request)
