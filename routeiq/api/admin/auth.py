"""Admin: the login call (``POST /admin/auth/verify``), which the UI makes with the key it was given.

It is the one control-plane route that needs no ``Authorization`` header (the key is the body);
``routeiq.governance.admin_login`` checks it and limits guessing.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from routeiq.api.runtime import runtime_of
from routeiq.governance.call import current_call

router = APIRouter(prefix="/admin", tags=["admin"])


class AdminCredentials(BaseModel):
    api_key: str = Field(min_length=1, max_length=4096, description="The admin key to check.")


class AdminVerdict(BaseModel):
    valid: Literal[True]
    role: Literal["admin"]


@router.post(
    "/auth/verify",
    response_model=AdminVerdict,
    responses={
        401: {"description": "Not an admin key (virtual and master keys are not)."},
        429: {"description": "Too many failed logins from this address this minute."},
    },
)
async def verify(credentials: AdminCredentials, request: Request) -> dict[str, object]:
    """Whether ``api_key`` is an admin key: 200 if it is, 401 if not (counted and audited)."""
    runtime = runtime_of(request)
    client = request.client
    call = current_call(request.scope)
    await runtime.admin_login.verify(
        credentials.api_key,
        source=client.host if client else "unknown",
        route=request.url.path,
        request_id=call.request_id if call is not None else None,
    )
    return {"valid": True, "role": "admin"}
