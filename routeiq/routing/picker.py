"""Decide which deployment serves an attempt: healthy candidates first, then the strategy.

Health is LiteLLM's first: ``router.select(kind="healthy")`` leaves out cooled-down deployments,
whether LiteLLM's own calls or the passthrough executor reported the failures. That call costs a
few hundred microseconds, more than the rest of the passthrough path, so its answer is reused for
``HEALTHY_TTL_SECONDS`` per group and dropped at once when this worker sees a failure; a cooldown
set by another worker is seen within that TTL. Calls that find the answer stale together share one
fetch: with Redis configured each fetch is a round trip, and a burst must not make one per request.
Deployments that already failed within this request are left out, so a retry never lands on the
same one; then RouteIQ's circuit breakers (shared by the whole cluster) and the request's hard
constraints (context window, vision, tools) have their say. Strategies see only what is left.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litellm.types.router import RouterRateLimitError
from opentelemetry.trace import Span

from routeiq.resilience.breaker import CircuitBreakers
from routeiq.routing.constraints import capable
from routeiq.routing.deployments import Deployment, DeploymentTable
from routeiq.routing.llmrouter import judge_off_loop
from routeiq.routing.strategy import NoHealthyDeployment, RoutingChoice, RoutingContext, RoutingStrategy

HEALTHY_TTL_SECONDS = 0.25


class Picker:
    def __init__(
        self,
        router: Any,
        deployments: DeploymentTable,
        default_strategy: RoutingStrategy,
        breakers: CircuitBreakers | None = None,
    ) -> None:
        self._router = router
        self._deployments = deployments
        self._breakers = breakers
        self.default_strategy = default_strategy
        self.group_strategies: dict[str, RoutingStrategy] = {}
        self._healthy: dict[str, tuple[float, asyncio.Future[list[str]]]] = {}  # group -> (fetched at, ids)

    def strategy_for(self, group: str) -> RoutingStrategy:
        return self.group_strategies.get(group, self.default_strategy)

    async def candidates(self, group: str, context: RoutingContext) -> list[Deployment]:
        """Healthy, not yet failed in this request, circuit closed, and able to take the request."""
        candidates = []
        for deployment_id in await self._healthy_ids(group):
            deployment = self._deployments.get(deployment_id)
            if deployment is not None and deployment.id not in context.excluded:
                candidates.append(deployment)
        if not candidates:
            raise NoHealthyDeployment(group, retry_after=1.0)
        if self._breakers is not None:
            admitted = await self._breakers.admit(candidates)
            if not admitted:
                wait = self._breakers.seconds_until_probe([candidate.id for candidate in candidates])
                raise NoHealthyDeployment(group, retry_after=wait, circuit_open=True)
            candidates = admitted
        return capable(candidates, context.signals)

    async def decide(self, group: str, context: RoutingContext, span: Span | None = None) -> RoutingChoice:
        """The strategy's pick among the candidates; ``span`` (the attempt's routing span, if traced)
        learns which deployments the strategy chose from."""
        candidates = await self.candidates(group, context)
        if span is not None and span.is_recording():
            span.set_attribute("routeiq.routing.candidates", [candidate.id for candidate in candidates])
        strategy = context.arm_strategy  # an experiment arm's, in the requested group only
        if strategy is None or group != context.group:
            strategy = self.strategy_for(group)
        await judge_off_loop(strategy, candidates, context)
        decision = strategy.choose(candidates, context)
        context.decision, context.candidates = decision, candidates
        return decision

    def forget_health(self) -> None:
        """Drop the cached answers: a failure was just recorded."""
        self._healthy.clear()

    async def healthy_ids(self, group: str) -> set[str]:
        try:
            return set(await self._healthy_ids(group))
        except NoHealthyDeployment:
            return set()

    async def _healthy_ids(self, group: str) -> list[str]:
        now = time.monotonic()
        cached = self._healthy.get(group)
        if cached is None or now - cached[0] >= HEALTHY_TTL_SECONDS:
            fetch = asyncio.ensure_future(self._fetch_healthy(group))
            fetch.add_done_callback(_retrieve)
            cached = self._healthy[group] = (now, fetch)
        answer = cached[1]
        if answer.done():
            return answer.result()
        return await asyncio.shield(answer)  # one caller's cancellation must not cancel the others'

    async def _fetch_healthy(self, group: str) -> list[str]:
        try:
            healthy = await self._router.select(group, {"metadata": {}}, kind="healthy")
        except RouterRateLimitError as error:  # every deployment cooling down
            raise NoHealthyDeployment(group, retry_after=_cooldown_left(error)) from None
        return [entry["model_info"]["id"] for entry in healthy]


def _retrieve(fetch: asyncio.Future[list[str]]) -> None:
    """Mark the fetch's outcome seen: its waiters may all have been cancelled."""
    if not fetch.cancelled():
        fetch.exception()


def _cooldown_left(error: RouterRateLimitError) -> float:
    seconds = getattr(error, "cooldown_time", None)
    return float(seconds) if isinstance(seconds, int | float) and seconds > 0 else 1.0
