"""Everything a request needs, built once in the app's lifespan and closed there.

It hangs off ``app.state.runtime``; nothing here is module-level, so two apps in one process share
nothing. Importing this module imports LiteLLM (seconds), which is why the CLI imports it lazily.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from litellm import Router

from routeiq.executors.attempts import Dispatcher
from routeiq.executors.litellm_router import LiteLLMExecutor
from routeiq.executors.passthrough import PassthroughExecutor
from routeiq.routing.deployments import DeploymentTable, litellm_model_list
from routeiq.routing.picker import Picker
from routeiq.routing.plugin import RouterPlugin
from routeiq.routing.registry import create_strategy
from routeiq.settings import Settings

logger = logging.getLogger("routeiq")


@dataclass
class Runtime:
    settings: Settings
    deployments: DeploymentTable
    router: Any  # litellm.Router (a facade LiteLLM does not type for mypy)
    picker: Picker
    http: aiohttp.ClientSession
    dispatcher: Dispatcher
    started_at: int

    async def close(self) -> None:
        await self.http.close()


def build_router(settings: Settings) -> Any:
    """A Router that does no retries or fallbacks of its own: the dispatcher does them for both executors."""
    router_settings = settings.router_settings
    return Router(
        model_list=litellm_model_list(settings.model_list),
        num_retries=0,
        allowed_fails=router_settings.allowed_fails,
        cooldown_time=router_settings.cooldown_time,
        timeout=settings.request_timeout_seconds,
        default_litellm_params=settings.litellm_settings.model_dump(),
    )


async def build_runtime(settings: Settings) -> Runtime:
    deployments = DeploymentTable(settings.model_list)
    router = build_router(settings)
    picker = Picker(router, deployments, create_strategy(settings.router_settings.routing_strategy))
    router.register_plugin(RouterPlugin(router, picker))
    http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
        skip_auto_headers=("User-Agent",),
    )
    passthrough = None
    if settings.passthrough == "auto":
        passthrough = PassthroughExecutor(
            http, router.health(), settings.request_timeout_seconds, settings.connect_timeout_seconds
        )
    dispatcher = Dispatcher(
        settings, picker, passthrough, LiteLLMExecutor(router, settings.request_timeout_seconds)
    )
    runtime = Runtime(settings, deployments, router, picker, http, dispatcher, started_at=int(time.time()))
    logger.info(
        "router built: %d deployments in %d groups (%d via passthrough), strategy %s",
        len(deployments),
        len(deployments.groups),
        sum(1 for deployment in deployments if dispatcher.uses_passthrough(deployment)),
        picker.strategy.name,
    )
    return runtime
