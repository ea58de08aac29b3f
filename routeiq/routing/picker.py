"""Decide which deployment serves an attempt: healthy candidates first, then the strategy.

Health is LiteLLM's first: ``router.select(kind="healthy")`` leaves out cooled-down deployments,
whether LiteLLM's own calls or the passthrough executor reported the failures. Deployments that
already failed within this request are left out, so a retry never lands on the same one; then
RouteIQ's circuit breakers (shared by the whole cluster) have their say. Strategies see only what
is left.
"""

from __future__ import annotations

from typing import Any

from litellm.types.router import RouterRateLimitError

from routeiq.resilience.breaker import CircuitBreakers
from routeiq.routing.deployments import DeploymentTable
from routeiq.routing.strategy import Decision, NoHealthyDeployment, RoutingContext, RoutingStrategy


class Picker:
    def __init__(
        self,
        router: Any,
        deployments: DeploymentTable,
        strategy: RoutingStrategy,
        breakers: CircuitBreakers | None = None,
    ) -> None:
        self._router = router
        self._deployments = deployments
        self._breakers = breakers
        self.strategy = strategy

    async def decide(self, group: str, context: RoutingContext) -> Decision:
        try:
            healthy = await self._router.select(group, {"metadata": {}}, kind="healthy")
        except RouterRateLimitError as error:
            raise NoHealthyDeployment(group, retry_after=_cooldown_left(error)) from None
        candidates = []
        for entry in healthy:
            deployment = self._deployments.get(entry["model_info"]["id"])
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
        decision = self.strategy.choose(candidates, context)
        context.decision = decision
        return decision

    async def healthy_ids(self, group: str) -> set[str]:
        try:
            healthy = await self._router.select(group, {"metadata": {}}, kind="healthy")
        except RouterRateLimitError:  # every deployment cooling down: LiteLLM raises rather than answer empty
            return set()
        return {entry["model_info"]["id"] for entry in healthy}


def _cooldown_left(error: RouterRateLimitError) -> float:
    seconds = getattr(error, "cooldown_time", None)
    return float(seconds) if isinstance(seconds, int | float) and seconds > 0 else 1.0
