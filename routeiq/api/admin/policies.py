"""Admin: the policy rules in force, a dry run that explains a described request, and reloads."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from routeiq.api.errors import APIError, bad_request
from routeiq.api.runtime import runtime_of
from routeiq.governance.policy import (
    PolicyEngine,
    PolicyError,
    PolicyRequest,
    RuleSet,
    candidate_targets,
    normalise_route,
    requested_groups,
)

router = APIRouter(prefix="/admin/policies", tags=["admin"])


class DescribedRequest(BaseModel):
    """A request to judge: who sends it (as their key would say) and what it asks for."""

    model_config = ConfigDict(extra="forbid")

    team: str | None = Field(default=None, description="Team of the virtual key.")
    user: str | None = Field(default=None, description="User of the virtual key.")
    key_id: str | None = Field(default=None, description="Virtual key id.")
    model: str | None = Field(default=None, description="The requested model (group or profile).")
    route: str = Field(default="/v1/chat/completions", description="The path called.")
    method: str = Field(default="POST")
    source_ip: str | None = Field(default=None, description="The client's address.")

    @field_validator("source_ip")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)  # ValueError: 400 naming the field
        return value


def _engine(request: Request) -> PolicyEngine:
    engine: PolicyEngine | None = runtime_of(request).policy
    if engine is None:
        raise bad_request("no policy file is configured (routeiq.policy.file)", code="policy_not_configured")
    return engine


def _summary(engine: PolicyEngine, rules: RuleSet) -> dict[str, Any]:
    return {
        "file": str(engine.path),
        "sha256": rules.digest,
        "loaded_at": rules.loaded_at,
        "rules": len(rules.rules),
    }


@router.get("")
async def show(request: Request) -> dict[str, Any]:
    """The rules in force on this worker, in the order they are judged."""
    engine: PolicyEngine | None = runtime_of(request).policy
    if engine is None:
        return {"enabled": False}
    rules = engine.rules
    return {
        "enabled": True,
        **_summary(engine, rules),
        "default_action": engine.settings.default_action,
        "failure_mode": engine.settings.failure_mode,
        "reload_interval_seconds": engine.settings.reload_interval_seconds,
        "rules": [rule.model_dump(exclude_none=True) for rule in rules.rules],
    }


@router.post("/test")
async def test(described: DescribedRequest, request: Request) -> dict[str, Any]:
    """Which rule the described request would hit, and why each rule before it did not."""
    engine = _engine(request)
    runtime = runtime_of(request)
    groups = requested_groups(described.model, runtime.deployments, runtime.settings)
    policy_request = PolicyRequest(
        team=described.team,
        user=described.user,
        key_id=described.key_id,
        groups=groups,
        route=normalise_route(described.route),
        method=described.method.upper(),
        client_ip=described.source_ip,
    )
    targets = candidate_targets(groups, runtime.deployments, runtime.settings)
    return {"groups": list(groups), **engine.rules.explain(policy_request, targets)}


@router.post("/reload")
async def reload(request: Request) -> dict[str, Any]:
    """Re-read the policy file here and on every other worker and replica. A file that does not
    validate is refused (400, with the reason) and the rules in force keep serving."""
    engine = _engine(request)
    async with runtime_of(request).audit.action(request, "policy.reload", str(engine.path)) as entry:
        try:
            rules, version = await engine.reload()
        except PolicyError as error:
            raise APIError(400, str(error), code="invalid_policy") from None
        entry.details.update({"sha256": rules.digest, "rules": len(rules.rules), "version": version})
    return {"reloaded": True, "version": version, **_summary(engine, rules)}
