"""The rows the durable store keeps, as plain dataclasses. Times are UNIX epoch seconds (UTC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class KeyRecord:
    """A virtual key. Only the sha256 of the secret is kept, plus a short prefix for display."""

    key_id: str
    key_hash: str
    key_prefix: str
    name: str | None = None
    team: str | None = None
    user: str | None = None
    allowed_groups: list[str] = field(default_factory=list)
    allowed_models: list[str] = field(default_factory=list)
    limits: list[dict[str, Any]] = field(default_factory=list)  # governance.limits.Limit dumps
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    expires_at: float | None = None
    revoked_at: float | None = None
    created_by: str | None = None


@dataclass(slots=True)
class AuditRecord:
    """One control-plane action: who did what to which target, when, with what outcome."""

    actor: str
    action: str  # e.g. key.create, key.revoke, policy.reload, strategy.set, router.reload
    outcome: str  # success, failure or denied
    at: float
    target: str | None = None
    request_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # assigned by the store


@dataclass(slots=True)
class SpendRecord:
    """What one served request cost, and whom it is charged to."""

    at: float
    request_id: str
    group: str
    deployment_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    key_id: str | None = None
    team: str | None = None
    user: str | None = None
    id: int | None = None  # assigned by the store
