"""Admin: the configured plugins with their health and cluster-wide counters, every plugin that
could be configured, and switching a configured plugin off and on again on every worker."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from routeiq.api.errors import APIError
from routeiq.api.runtime import runtime_of
from routeiq.plugins.manager import available_plugins
from routeiq.state.base import StateUnavailable

router = APIRouter(prefix="/admin", tags=["admin"])


class PluginCounters(BaseModel):
    scope: Literal["cluster", "worker"] = Field(
        description="`cluster`: every worker and replica; `worker`: the shared state is unreachable."
    )
    runs: int = Field(description="Hooks run (stream events not counted).")
    failures: int
    timeouts: int
    blocks: int = Field(description="Requests or answers the plugin refused (guardrails).")
    oversize: int = Field(description="Texts over the guardrail's max_scan_chars, not checked.")


class PluginHealthReport(BaseModel):
    status: str
    detail: str | None


class PluginStatus(BaseModel):
    name: str
    version: str
    source: str = Field(description="`builtin` or the entry point's value.")
    priority: int
    enabled: bool = Field(description="Off: skipped on every request until enabled again.")
    timeout_ms: int
    failure_mode: Literal["continue", "abort"]
    hooks: list[str]
    health: PluginHealthReport
    counters: PluginCounters


class PluginList(BaseModel):
    plugins: list[PluginStatus] = Field(description="The configured plugins, in the order they run.")
    available: dict[str, str] = Field(description="Every plugin name that can be configured -> where from.")


class PluginSwitch(BaseModel):
    name: str
    enabled: bool
    version: int | None = Field(description="The change's number in GET /admin/changes.")


@router.get("/plugins", response_model=PluginList)
async def list_plugins(request: Request) -> dict[str, Any]:
    """Configured plugins in the order they run, each with whether it is enabled, its hooks, health
    and counters (summed over every worker and replica), plus the names available to
    ``routeiq.plugins``."""
    manager = runtime_of(request).plugins
    return {"plugins": await manager.health(), "available": available_plugins()}


@router.post("/plugins/{name}/enable", response_model=PluginSwitch)
async def enable_plugin(name: str, request: Request) -> dict[str, Any]:
    """Run the plugin again on every worker and replica."""
    return await _switch(request, name, enabled=True)


@router.post("/plugins/{name}/disable", response_model=PluginSwitch)
async def disable_plugin(name: str, request: Request) -> dict[str, Any]:
    """Skip the plugin on every request, on every worker and replica, until enabled again."""
    return await _switch(request, name, enabled=False)


async def _switch(request: Request, name: str, *, enabled: bool) -> dict[str, Any]:
    runtime = runtime_of(request)
    manager = runtime.plugins
    loaded = manager.find(name)
    if loaded is None:
        raise APIError(
            404,
            f"no plugin {name!r} is configured; configured: {[p.name for p in manager.plugins]}",
            code="plugin_not_found",
            param="name",
        )
    action = "plugin.enable" if enabled else "plugin.disable"
    async with runtime.audit.action(request, action, name, {"previous": loaded.enabled}):
        try:
            version = await manager.set_enabled(name, enabled)
        except StateUnavailable as error:
            raise APIError(503, f"not changed anywhere: {error}", code="state_unavailable") from None
    return {"name": name, "enabled": enabled, "version": version}
