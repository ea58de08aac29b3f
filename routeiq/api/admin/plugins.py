"""Admin: the configured plugins with their health, and every plugin that could be configured."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from routeiq.api.runtime import runtime_of
from routeiq.plugins.manager import available_plugins

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/plugins")
async def list_plugins(request: Request) -> dict[str, Any]:
    """Enabled plugins in the order they run, each with its hooks, health and failure counters
    (counters are this worker's), plus the names available to ``routeiq.plugins``."""
    manager = runtime_of(request).plugins
    return {"plugins": await manager.health(), "available": available_plugins()}
