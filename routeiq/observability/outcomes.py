"""Where every attempt's outcome goes: circuit breakers, cluster stats and metrics."""

from __future__ import annotations

from routeiq.executors.base import CALLER_FAULT_STATUSES, UpstreamError
from routeiq.observability.cluster_stats import ClusterStats
from routeiq.observability.metrics import Metrics
from routeiq.resilience.breaker import CircuitBreakers
from routeiq.routing.deployments import Deployment
from routeiq.routing.picker import Picker


class OutcomeRecorder:
    def __init__(
        self, breakers: CircuitBreakers | None, stats: ClusterStats, metrics: Metrics, picker: Picker
    ) -> None:
        self._breakers = breakers
        self._picker = picker
        self._stats = stats
        self._metrics = metrics

    async def succeeded(self, deployment: Deployment) -> None:
        self._stats.count(deployment.group, deployment.id, "ok")
        self._metrics.requests.labels(deployment.group, deployment.id, "ok").inc()
        if self._breakers is not None:
            await self._breakers.record_success(deployment.id)

    async def failed(self, deployment: Deployment, error: UpstreamError) -> None:
        self._picker.forget_health()  # LiteLLM may have just cooled the deployment down
        self._stats.count(deployment.group, deployment.id, "error")
        self._metrics.requests.labels(deployment.group, deployment.id, "error").inc()
        self._metrics.attempt_failures.labels(deployment.id, error.code).inc()
        if self._breakers is not None and error.status not in CALLER_FAULT_STATUSES:
            # (the caller's mistakes say nothing of a deployment's health)
            await self._breakers.record_failure(deployment.id, error.message)
