"""The control plane. ``AuthMiddleware`` admits only admin keys here, and none when none is configured."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from routeiq import __version__

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/status")
async def status(request: Request) -> dict[str, Any]:
    """Version, routing strategy, and every deployment with its executor and current health."""
    runtime = request.app.state.runtime
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
                }
            )
    return {
        "version": __version__,
        "strategy": runtime.picker.strategy.name,
        "groups": runtime.deployments.groups,
        "deployments": deployments,
    }
