"""The control plane under ``/admin``. ``AuthMiddleware`` admits only admin keys here, and none when
none is configured. Each module holds one area; ``router`` collects them."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from routeiq.api.admin import (
    audit,
    auth,
    changes,
    config,
    decisions,
    experiments,
    keys,
    metrics,
    plugins,
    policies,
    routing,
    spend,
)
from routeiq.api.admin.inputs import no_nul_characters

router = APIRouter(dependencies=[Depends(no_nul_characters)])
router.include_router(routing.router)
router.include_router(keys.router)
router.include_router(audit.router)
router.include_router(policies.router)
router.include_router(plugins.router)
router.include_router(spend.router)
router.include_router(changes.router)
router.include_router(decisions.router)
router.include_router(experiments.router)
router.include_router(config.router)
router.include_router(auth.router)
router.include_router(metrics.router)
