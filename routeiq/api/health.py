"""Liveness (the process answers), readiness (it can route), and Prometheus metrics."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import JSONResponse, Response

from routeiq import __version__
from routeiq.api.runtime import runtime_handle, runtime_of

if TYPE_CHECKING:  # typing only: the runtime module imports LiteLLM
    from routeiq.runtime import Runtime

router = APIRouter(tags=["health"])

NO_DEPLOYMENTS = (
    "no deployments configured: pass --config FILE (or set ROUTEIQ_CONFIG) with a model_list, "
    "then restart; `routeiq check-config FILE` checks it first"
)


@router.get("/_health/live")
async def live() -> dict[str, Any]:
    """The process is up. Checks nothing else, so it never flaps with a dependency."""
    return {"status": "alive", "version": __version__, "pid": os.getpid()}


@router.get("/_health/ready")
async def ready(request: Request) -> JSONResponse:
    """Each dependency's state. 503 while starting, draining or with no deployments configured
    (``checks.config`` says what to do); 200 with ``degraded`` when RouteIQ
    still serves but something is impaired (Redis lost, every deployment of a group circuit-open)."""
    runtime = runtime_handle(request).started
    draining = request.app.state.gate.draining
    checks: dict[str, Any] = {"config": "ok", "router": "ok" if runtime is not None else "starting"}
    checks["draining"] = draining
    if runtime is not None:
        checks["classifier"] = runtime.models.classifier_status
        checks["state"] = await runtime.state.check()
        checks["database"] = await _database_status(runtime)
        if runtime.breakers is not None:
            checks["open_circuits"] = sorted(
                deployment_id
                for deployment_id, view in runtime.breakers.states().items()
                if view["state"] != "closed"
            )
    if runtime is not None and len(runtime.deployments) == 0:
        # Up, but nothing to route to: a load balancer must not send traffic here.
        checks["config"] = NO_DEPLOYMENTS
    if runtime is None or draining:
        status, code = ("draining" if draining else "starting"), 503
    elif len(runtime.deployments) == 0:
        status, code = "not_configured", 503
    elif any(
        str(checks.get(name, "")).startswith("degraded") for name in ("state", "classifier", "database")
    ):
        status, code = "degraded", 200
    else:
        status, code = "ready", 200
    return JSONResponse({"status": status, "version": __version__, "checks": checks}, status_code=code)


async def _database_status(runtime: Runtime) -> str:
    """``<backend>`` when reachable; ``degraded: ...`` otherwise (keys, audit and spend need it)."""
    try:
        await runtime.database.ping()
    except Exception as error:
        return f"degraded: {runtime.database.backend} unreachable ({type(error).__name__})"
    return str(runtime.database.backend)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    runtime = runtime_of(request)
    runtime.metrics.draining.set(1 if request.app.state.gate.draining else 0)
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
