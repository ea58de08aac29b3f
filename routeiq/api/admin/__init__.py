"""The control plane under ``/admin``. ``AuthMiddleware`` admits only admin keys here, and none when
none is configured. Each module holds one area; ``router`` collects them."""

from __future__ import annotations

from fastapi import APIRouter

from routeiq.api.admin import routing

router = APIRouter()
router.include_router(routing.router)
