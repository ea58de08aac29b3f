"""The routing feedback loop: every attempt's outcome goes back to what the next routing decision reads.

A failure or success updates the deployment's circuit breaker, this worker's load numbers (in flight,
latency, tokens: what ``least-busy`` and friends read), the cluster stats, the metrics, and, when
served, the session's tier floor. (The request's decision event is written once per request by the
ledger, ``observability/ledger.py``.)"""

from __future__ import annotations

import time
from typing import Any

from routeiq.executors.base import CALLER_FAULT_STATUSES, UpstreamError
from routeiq.observability.cluster_stats import ClusterStats
from routeiq.observability.metrics import Metrics
from routeiq.resilience.breaker import CircuitBreakers
from routeiq.routing.affinity import SessionAffinity
from routeiq.routing.deployments import Deployment
from routeiq.routing.load import LoadTracker
from routeiq.routing.picker import Picker
from routeiq.routing.strategy import RoutingChoice, RoutingContext


class RoutingFeedback:
    """Built once in the runtime; the dispatcher's attempts report to it."""

    def __init__(
        self,
        breakers: CircuitBreakers | None,
        stats: ClusterStats,
        metrics: Metrics,
        picker: Picker,
        affinity: SessionAffinity,
        load: LoadTracker,
    ) -> None:
        self._breakers = breakers
        self._stats = stats
        self._metrics = metrics
        self._picker = picker
        self._affinity = affinity
        self._load = load

    def started(self, deployment: Deployment) -> float:
        self._load.started(deployment.id)
        return time.perf_counter()

    async def failed(self, deployment: Deployment, error: UpstreamError, started: float) -> None:
        self._load.finished(deployment.id, time.perf_counter() - started, 0)
        self._picker.forget_health()  # LiteLLM may have just cooled the deployment down
        self._stats.count(deployment.group, deployment.id, "error")
        self._metrics.requests.labels(deployment.group, deployment.id, "error").inc()
        self._metrics.attempt_failures.labels(deployment.id, error.code).inc()
        if self._breakers is not None and error.status not in CALLER_FAULT_STATUSES:
            # (the caller's mistakes say nothing of a deployment's health)
            await self._breakers.record_failure(deployment.id, error.message)

    async def served(
        self,
        decision: RoutingChoice,
        context: RoutingContext,
        started: float,
        usage: dict[str, Any] | None,
    ) -> None:
        deployment = decision.deployment
        self._load.finished(deployment.id, time.perf_counter() - started, _total_tokens(usage))
        self._stats.count(deployment.group, deployment.id, "ok")
        self._metrics.count_served(
            deployment.group,
            deployment.id,
            decision.strategy,
            decision.tier or deployment.tier or "none",
            deployment.upstream_model,
        )
        if self._breakers is not None:
            await self._breakers.record_success(deployment.id)
        if context.session_id is not None and decision.tier is not None:
            await self._affinity.reached(context.session_id, decision.tier, context.session_floor)


def _total_tokens(usage: dict[str, Any] | None) -> int:
    total = (usage or {}).get("total_tokens")
    return int(total) if isinstance(total, int | float) else 0
