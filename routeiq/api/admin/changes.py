"""Admin: which version of every live-changeable subject each worker and replica has applied.

Operators see here whether a change reached every instance (and why one could not apply it); tests
wait on these versions instead of sleeping.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from routeiq.api.errors import APIError
from routeiq.api.runtime import runtime_of
from routeiq.state.base import StateUnavailable

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/changes")
async def changes(request: Request) -> dict[str, Any]:
    """Every subject's current version, and per live instance what it applied, what it could not
    apply (with the reason) and what it changed alone while the shared state was away."""
    try:
        return await runtime_of(request).state.changes.cluster()
    except StateUnavailable as error:
        raise APIError(503, f"shared state unavailable: {error}", code="state_unavailable") from None
