"""Liveness (the process answers) and readiness (it can route), for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from routeiq import __version__

router = APIRouter(prefix="/_health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up. Checks nothing else, so it never flaps with a dependency."""
    return {"status": "alive", "version": __version__}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Config loaded and the router built: ready to take traffic."""
    runtime = getattr(request.app.state, "runtime", None)
    checks = {
        "config": "ok",
        "router": "ok" if runtime is not None else "starting",
    }
    is_ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if is_ready else "not_ready", "version": __version__, "checks": checks}
    return JSONResponse(body, status_code=200 if is_ready else 503)
