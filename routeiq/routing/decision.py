"""The ``x-routeiq-*`` headers that explain which deployment answered and why."""

from __future__ import annotations

from routeiq.routing.strategy import Decision


def decision_headers(decision: Decision, failed: list[str], overhead_ms: float) -> dict[str, str]:
    deployment = decision.deployment
    headers = {
        "x-routeiq-served-model": deployment.upstream_model,
        "x-routeiq-deployment-id": deployment.id,
        "x-routeiq-group": deployment.group,
        "x-routeiq-strategy": decision.strategy,
        "x-routeiq-reason": decision.reason,
        "x-routeiq-attempted-fallbacks": str(len(failed)),
        "x-routeiq-overhead-ms": f"{overhead_ms:.2f}",
    }
    if deployment.tier:
        headers["x-routeiq-tier"] = deployment.tier
    if failed:
        headers["x-routeiq-failed-deployments"] = ",".join(failed)
    return headers
