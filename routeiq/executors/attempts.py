"""The attempt loop: pick, call, and on failure try another deployment, then the fallback groups.

Retries happen only before the first byte reaches the client: executors return a stream only after
its first event arrived, and from then on a failure is reported inside the stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from routeiq.api.errors import APIError, retry_after_headers, service_unavailable
from routeiq.executors.base import Completed, Operation, Streaming, UpstreamError
from routeiq.executors.litellm_router import LiteLLMExecutor
from routeiq.executors.passthrough import PassthroughExecutor
from routeiq.governance.call import GovernedCall, Served
from routeiq.observability.metrics import Metrics
from routeiq.observability.outcomes import OutcomeRecorder
from routeiq.routing.affinity import SessionAffinity
from routeiq.routing.constraints import NoCapableDeployment
from routeiq.routing.decision import decision_headers
from routeiq.routing.deployments import Deployment, usage_cost
from routeiq.routing.picker import Picker
from routeiq.routing.strategy import Decision, NoHealthyDeployment, RoutingContext
from routeiq.settings import Settings

STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
ERROR_EVENT_PREFIX = b'data: {"error"'  # how executors end a stream that broke (sse_error_event)


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        picker: Picker,
        passthrough: PassthroughExecutor | None,
        litellm_executor: LiteLLMExecutor,
        outcomes: OutcomeRecorder,
        affinity: SessionAffinity,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._picker = picker
        self._passthrough = passthrough
        self._litellm = litellm_executor
        self._outcomes = outcomes
        self._affinity = affinity
        self._metrics = metrics

    async def dispatch(
        self,
        operation: Operation,
        context: RoutingContext,
        started: float,
        call: GovernedCall | None = None,
    ) -> Response:
        """Serve the request; ``call`` (the governance view of it) learns who answered and the usage."""
        if call is not None:
            context.excluded |= call.excluded_deployments
        body = dict(context.body)
        body.pop("routeiq", None)  # RouteIQ's own options never go upstream
        body["model"] = context.group
        if context.session_id is not None:
            context.session_floor = await self.session_floor(context.session_id)
        failed: list[str] = []
        last_error: UpstreamError | None = None
        no_healthy: NoHealthyDeployment | None = None
        attempts_per_group = 1 + self._settings.router_settings.num_retries
        upstream_seconds = routing_seconds = 0.0
        for target in (context.group, *self._settings.fallbacks_for(context.group)):
            for _ in range(attempts_per_group):
                routing_started = time.perf_counter()
                try:
                    decision = await self._picker.decide(target, context)
                except NoHealthyDeployment as error:
                    no_healthy = error
                    break
                except NoCapableDeployment as error:
                    raise APIError(
                        400,
                        f"no deployment of {target!r} can take this request: {error}",
                        code="no_capable_deployment",
                    ) from None
                call_started = time.perf_counter()
                routing_seconds += call_started - routing_started
                self._metrics.routing_latency.observe(call_started - routing_started)
                attempt = self._outcomes.started(decision.deployment)
                try:
                    outcome = await self._execute(operation, body, decision, context)
                except UpstreamError as error:
                    upstream_seconds += time.perf_counter() - call_started
                    await self._outcomes.failed(decision.deployment, error, attempt)
                    if not error.retryable:
                        raise _client_error(error) from None
                    failed.append(decision.deployment.id)
                    context.excluded.add(decision.deployment.id)
                    last_error = error
                    continue
                upstream_seconds += time.perf_counter() - call_started
                overhead_ms = max(0.0, (time.perf_counter() - started - upstream_seconds) * 1000)
                headers = decision_headers(decision, context, failed, overhead_ms)
                if isinstance(outcome, Completed):
                    await self._outcomes.served(
                        decision, context, failed, attempt, outcome.usage, routing_seconds
                    )
                    cost = _settle(call, decision.deployment, outcome.usage)
                    if cost is not None:
                        headers["x-routeiq-cost"] = f"{cost:.10f}".rstrip("0").rstrip(".")
                    return Response(outcome.body, media_type="application/json", headers=headers)
                if call is not None:  # known now, even if the client leaves before the stream ends
                    call.served = served_by(decision.deployment)
                events = self._stream_body(outcome, decision, context, failed, attempt, routing_seconds, call)
                return StreamingResponse(
                    events, media_type="text/event-stream", headers={**headers, **STREAM_HEADERS}
                )
        if last_error is not None:
            raise _client_error(last_error)
        group = context.group
        if no_healthy is not None and no_healthy.circuit_open:
            message, code = f"every deployment of {group!r} has an open circuit breaker", "circuit_open"
        else:
            message, code = (
                f"no healthy deployment for {group!r}; all are cooling down",
                "no_healthy_deployment",
            )
        raise service_unavailable(
            message, code=code, retry_after=no_healthy.retry_after if no_healthy else 1.0
        )

    async def _stream_body(
        self,
        stream: Streaming,
        decision: Decision,
        context: RoutingContext,
        failed: list[str],
        attempt: float,
        routing_seconds: float,
        call: GovernedCall | None,
    ) -> AsyncIterator[bytes]:
        broke_off = False
        try:
            yield stream.first
            async for events in stream.rest:
                broke_off = events.startswith(ERROR_EVENT_PREFIX)
                yield events
        finally:
            await stream.close()
            # Charged even when the client went away: the upstream did the work.
            _settle(call, decision.deployment, stream.usage())
        if broke_off:
            failure = UpstreamError(
                502, "stream broke off", code="upstream_stream_interrupted", retryable=False
            )
            await self._outcomes.failed(decision.deployment, failure, attempt)
        else:
            await self._outcomes.served(decision, context, failed, attempt, stream.usage(), routing_seconds)

    async def session_floor(self, session_id: str) -> str | None:
        return await self._affinity.floor(session_id)

    def uses_passthrough(self, deployment: Deployment) -> bool:
        return self._passthrough is not None and deployment.speaks_openai

    async def _execute(
        self, operation: Operation, body: dict[str, Any], decision: Decision, context: RoutingContext
    ) -> Completed | Streaming:
        deployment = decision.deployment
        if self._passthrough is not None and deployment.speaks_openai:  # uses_passthrough, for mypy
            return await self._passthrough.execute(operation, body, deployment)
        return await self._litellm.execute(operation, body, deployment, context)


def _settle(call: GovernedCall | None, deployment: Deployment, usage: dict[str, Any] | None) -> float | None:
    """Tell the governance layers who answered, with what usage; returns the cost (USD) if known."""
    cost = usage_cost(deployment, usage)
    if call is not None:
        call.served = served_by(deployment)
        call.usage = usage
        call.cost_usd = cost
    return cost


def served_by(deployment: Deployment) -> Served:
    return Served(deployment.id, deployment.group, deployment.litellm_model)


def _client_error(error: UpstreamError) -> APIError:
    headers = retry_after_headers(error.retry_after or 1.0) if error.status == 429 else {}
    return APIError(
        error.status, error.message, code=error.code, error_type=error.error_type, headers=headers
    )
