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


@dataclass(slots=True)
class DecisionRecord:
    """One model request's routing and outcome (field names are the admin API's)."""

    request_id: str
    time: float  # when the request arrived, UNIX epoch seconds
    route: str
    status: int
    outcome: str  # served, failed, refused or shed
    outcome_detail: str  # the ledger's finer word: ok, rejected, interrupted, client_disconnected...
    group: str | None = None
    requested_group: str | None = None
    strategy: str | None = None
    profile: str | None = None
    tier: str | None = None
    served_model: str | None = None
    deployment: str | None = None
    reason: str | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)  # fallback groups an attempt was made in
    attempted: list[dict[str, Any]] = field(default_factory=list)  # each deployment tried, in order
    skipped: dict[str, str] = field(default_factory=dict)  # group -> why nothing was tried there
    attempts: int = 0
    error_code: str | None = None
    latency_ms: float = 0.0
    routing_ms: float | None = None
    routing_overhead_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    key_id: str | None = None
    team: str | None = None
    user: str | None = None
    assessment: dict[str, Any] | None = None
    experiment: str | None = None
    arm: str | None = None
    shadow: dict[str, Any] | None = None  # shadow arm -> the decision it made (never served)
    prompt: str | None = None
    id: int | None = None  # assigned by the store
