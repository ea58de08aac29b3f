"""Admin: status, the active routing strategy, breakers, cluster stats and router artifact reloads."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from routeiq import __version__
from routeiq.api.errors import APIError, bad_request
from routeiq.api.runtime import runtime_of
from routeiq.routing.registry import DESCRIPTIONS, strategy_names
from routeiq.state.base import StateUnavailable

router = APIRouter(prefix="/admin", tags=["admin"])


class StrategyChange(BaseModel):
    strategy: str
    group: str | None = None  # None: the default for every group without its own


class ActiveStrategies(BaseModel):
    default: str
    groups: dict[str, str]  # groups with a strategy of their own


class DeploymentStatus(BaseModel):
    id: str
    group: str
    model: str
    provider: str
    tier: str | None
    executor: Literal["passthrough", "litellm"]
    healthy: bool
    circuit: Literal["closed", "open", "half_open"]


class Status(BaseModel):
    version: str
    strategy: ActiveStrategies
    state_backend: str
    groups: list[str]
    deployments: list[DeploymentStatus]


class StrategyOption(BaseModel):
    name: str
    description: str


class Strategies(BaseModel):
    active: ActiveStrategies
    available: list[StrategyOption]


class StrategySet(BaseModel):
    active: ActiveStrategies
    version: int | None  # null: Redis is away and only this worker changed


class BreakerView(BaseModel):
    state: Literal["closed", "open", "half_open"]
    opened_at: float | None
    reason: str


class Breakers(BaseModel):
    enabled: bool
    deployments: dict[str, BreakerView]


class DeploymentCounts(BaseModel):
    group: str
    ok: int
    error: int


class RequestStats(BaseModel):
    total: int
    deployments: dict[str, DeploymentCounts]
    scope: str  # "cluster", or this worker only while the shared state is unreachable
    backend: str


@router.get("/status", response_model=Status)
async def status(request: Request) -> dict[str, Any]:
    """Version, routing strategy, and every deployment with its executor and current health."""
    runtime = runtime_of(request)
    breakers = runtime.breakers.states() if runtime.breakers is not None else {}
    deployments = []
    for group in runtime.deployments.groups:
        healthy = await runtime.picker.healthy_ids(group)
        for deployment in runtime.deployments.group(group):
            deployments.append(
                {
                    "id": deployment.id,
                    "group": deployment.group,
                    "model": deployment.upstream_model,
                    "provider": deployment.provider,
                    "tier": deployment.tier,
                    "executor": "passthrough"
                    if runtime.dispatcher.uses_passthrough(deployment)
                    else "litellm",
                    "healthy": deployment.id in healthy,
                    "circuit": breakers.get(deployment.id, {}).get("state", "closed"),
                }
            )
    return {
        "version": __version__,
        "strategy": runtime.strategy.names(),
        "state_backend": runtime.state.backend,
        "groups": runtime.deployments.groups,
        "deployments": deployments,
    }


@router.get("/strategy", response_model=Strategies)
async def get_strategy(request: Request) -> dict[str, Any]:
    """The active strategies (default and per group) and every strategy that can be chosen."""
    return {
        "active": runtime_of(request).strategy.names(),
        "available": [{"name": name, "description": DESCRIPTIONS[name]} for name in strategy_names()],
    }


@router.put("/strategy", response_model=StrategySet)
async def set_strategy(change: StrategyChange, request: Request) -> dict[str, Any]:
    """Switch the strategy, for every worker and replica. ``version`` is the change's number in
    ``GET /admin/changes`` (null: Redis is away and only this worker changed)."""
    runtime = runtime_of(request)
    if change.group is not None and not runtime.deployments.has_group(change.group):
        raise bad_request(f"unknown group {change.group!r}", param="group")
    details = {"strategy": change.strategy, "previous": runtime.strategy.names()}
    async with runtime.audit.action(request, "strategy.set", change.group or "*", details):
        try:
            version = await runtime.strategy.set(change.strategy, change.group)
        except ValueError as error:
            raise bad_request(str(error), param="strategy") from None
        except StateUnavailable as error:
            raise APIError(503, f"not changed anywhere: {error}", code="state_unavailable") from None
    return {"active": runtime.strategy.names(), "version": version}


@router.get("/breakers", response_model=Breakers)
async def breakers(request: Request) -> dict[str, Any]:
    """Circuit breaker state per deployment, as the whole cluster sees it."""
    runtime = runtime_of(request)
    return {
        "enabled": runtime.breakers is not None,
        "deployments": runtime.breakers.states() if runtime.breakers else {},
    }


@router.get("/stats", response_model=RequestStats)
async def stats(request: Request) -> dict[str, Any]:
    """Requests per deployment and outcome, summed over every worker and replica."""
    result: dict[str, Any] = await runtime_of(request).stats.snapshot()
    return result


class RouterReload(BaseModel):
    path: str | None = None  # None: reload the directory the router came from


@router.post("/routers/{algo}/reload")
async def reload_router(algo: str, change: RouterReload, request: Request) -> dict[str, Any]:
    """Verify and hot-swap a trained router artifact on every worker; a bad one is refused."""
    from routeiq.routing.learned import ArtifactError

    runtime = runtime_of(request)
    async with runtime.audit.action(request, "router.reload", algo, {"path": change.path}):
        try:
            result: dict[str, Any] = await runtime.reloads.reload(algo, change.path)
        except KeyError:
            raise APIError(
                404, f"no trained router {algo!r} is configured", code="router_not_found"
            ) from None
        except (ArtifactError, OSError) as error:
            raise bad_request(f"artifact refused: {error}", param="path", code="artifact_refused") from None
    return result
