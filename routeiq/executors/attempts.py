"""The attempt loop: pick, call, and on failure try another deployment, then the fallback groups.

Retries happen only before the first byte reaches the client: executors return a stream only after
its first event arrived, and from then on a failure is reported inside the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from routeiq.errors import NoDeploymentAvailable, NoDeploymentCanServe, UpstreamFailed
from routeiq.executors.base import Completed, Operation, Streaming, UpstreamError, upstream_timeout
from routeiq.executors.cascade import CascadeRun
from routeiq.executors.litellm_router import LiteLLMExecutor
from routeiq.executors.native import NativeCall
from routeiq.executors.passthrough import PassthroughExecutor
from routeiq.governance.access import reachable_fallbacks
from routeiq.governance.call import GovernedCall, Served
from routeiq.governance.metering import StreamMeter
from routeiq.observability.attempt_telemetry import AttemptTelemetry, record_choice
from routeiq.observability.metrics import Metrics
from routeiq.observability.tracing import Tracing
from routeiq.routing.affinity import SessionAffinity
from routeiq.routing.cascade import CascadePlans
from routeiq.routing.catalogue import CASCADE_STRATEGY
from routeiq.routing.constraints import NoCapableDeployment
from routeiq.routing.decision import (
    FailedAttempt,
    RequestTrace,
    decision_headers,
    experiment_headers,
    failure_headers,
    failure_message,
)
from routeiq.routing.deployments import Deployment, usage_cost
from routeiq.routing.feedback import RoutingFeedback
from routeiq.routing.picker import Picker
from routeiq.routing.strategy import NoHealthyDeployment, RoutingChoice, RoutingContext
from routeiq.settings import Settings

if TYPE_CHECKING:
    from routeiq.experiments.live import Experiments

STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
ERROR_EVENT_PREFIX = b'data: {"error"'  # how executors end a stream that broke (sse_error_event)
ANTHROPIC_ERROR_EVENT = b"event: error\n"  # how an Anthropic or Responses stream sent as is breaks off


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        picker: Picker,
        passthrough: PassthroughExecutor | None,
        litellm_executor: LiteLLMExecutor,
        outcomes: RoutingFeedback,
        affinity: SessionAffinity,
        metrics: Metrics,
        tracing: Tracing | None = None,
        experiments: Experiments | None = None,
        cascades: CascadePlans | None = None,
    ) -> None:
        self._settings = settings
        self._cascades = cascades
        self._experiments = experiments
        self._picker = picker
        self._passthrough = passthrough
        self._litellm = litellm_executor
        self._outcomes = outcomes
        self._affinity = affinity
        self._metrics = metrics
        self._tracing = tracing if tracing is not None else Tracing.off()

    async def dispatch(
        self,
        operation: Operation,
        context: RoutingContext,
        started: float,
        call: GovernedCall | None = None,
        trace: RequestTrace | None = None,
        native: NativeCall | None = None,
    ) -> Response:
        """Serve the request; ``call`` (the governance view of it) learns who answered and the usage,
        ``trace`` (the request ledger's) what routing did, whether it worked or not. ``native`` is
        the request as sent in another API, for the deployments that speak it (their answer is then
        in that API too: ``native.answered``)."""
        trace = trace if trace is not None else RequestTrace()
        trace.group, trace.context = context.group, context
        trace.strategy = self._picker.strategy_for(context.group).name
        enrolment = None
        if self._experiments is not None:  # one dict lookup unless the group runs an experiment
            enrolment = self._experiments.enrol(context, call.identity if call is not None else None)
            if enrolment is not None:
                enrolment.apply(context)
                trace.experiment, trace.arm = enrolment.experiment, enrolment.arm.name
                trace.strategy = enrolment.arm.strategy.name
        trace.streaming = operation.streams and bool(context.body.get("stream"))
        if call is not None:
            context.excluded |= call.excluded_deployments
        body = dict(context.body)
        body.pop("routeiq", None)  # RouteIQ's own options never go upstream
        body["model"] = context.group
        if context.session_id is not None:
            context.session_floor = await self.session_floor(context.session_id)
        configured = self._settings.fallbacks_for(context.group)
        fallbacks, out_of_reach = reachable_fallbacks(call, configured)
        for group in out_of_reach:
            trace.skipped[group] = "not tried, outside this key's allowed groups"
        if trace.strategy == CASCADE_STRATEGY:  # the only check a group without a cascade pays
            answered = await self._cascade(operation, body, context, started, call, trace, native)
            if answered is not None:
                return answered
        failed: list[str] = []
        no_healthy: NoHealthyDeployment | None = None
        attempts_per_group = 1 + self._settings.router_settings.num_retries
        upstream_seconds = 0.0
        for target in (context.group, *fallbacks):
            for _ in range(attempts_per_group):
                routing_started = time.perf_counter()
                try:
                    with self._tracing.span("routeiq.route") as route_span:
                        decision = await self._picker.decide(target, context, route_span)
                        record_choice(route_span, target, context.group, decision)
                except NoHealthyDeployment as error:
                    no_healthy = error
                    if not any(failure.group == target for failure in trace.failures):
                        trace.skipped[target] = _unavailable_reason(error)
                    break
                except NoCapableDeployment as error:
                    raise NoDeploymentCanServe(
                        f"no deployment of {target!r} can take this request: {error}", failure_headers(trace)
                    ) from None
                if target != context.group and target not in trace.fallbacks_tried:
                    trace.fallbacks_tried.append(target)
                call_started = time.perf_counter()
                trace.routing_seconds += call_started - routing_started
                trace.decision = decision
                shadows = enrolment is not None and enrolment.shadows and trace.shadow is None
                if shadows and enrolment is not None and target == context.group:
                    trace.shadow = enrolment.shadow_decisions(context)  # recorded, never served
                self._metrics.routing_latency.observe(call_started - routing_started)
                attempt = self._outcomes.started(decision.deployment)
                telemetry = AttemptTelemetry(
                    self._tracing, self._metrics, operation, decision, body, len(trace.failures) + 1
                )
                try:
                    outcome = await self._execute(operation, body, decision, context, native)
                except UpstreamError as error:
                    telemetry.failed(error)
                    upstream_seconds += time.perf_counter() - call_started
                    await self._outcomes.failed(decision.deployment, error, attempt)
                    trace.failures.append(_failed_attempt(decision, error))
                    if not error.retryable:
                        raise _client_error(error, failure_headers(trace)) from None
                    failed.append(decision.deployment.id)
                    context.excluded.add(decision.deployment.id)
                    continue
                except BaseException as error:  # a bug or a cancellation: the span still ends
                    telemetry.crashed(error)
                    raise
                trace.served = True
                upstream_seconds += time.perf_counter() - call_started
                overhead_ms = max(0.0, (time.perf_counter() - started - upstream_seconds) * 1000)
                trace.overhead_ms = overhead_ms
                headers = decision_headers(decision, context, failed, overhead_ms)
                if trace.experiment is not None:
                    headers.update(experiment_headers(trace))
                if isinstance(outcome, Completed):
                    telemetry.answered(outcome.body, outcome.usage)
                    await self._outcomes.served(decision, context, attempt, outcome.usage)
                    cost = _record_served(call, decision.deployment, outcome.usage)
                    if cost is not None:
                        headers["x-routeiq-cost"] = f"{cost:.10f}".rstrip("0").rstrip(".")
                    return Response(outcome.body, media_type="application/json", headers=headers)
                if call is not None:  # known now, even if the client leaves before the stream ends
                    call.served = served_by(decision.deployment)
                events = self._stream_body(outcome, decision, context, attempt, call, trace, telemetry)
                return ClosingStreamingResponse(
                    events, media_type="text/event-stream", headers={**headers, **STREAM_HEADERS}
                )
        raise _exhausted(trace, configured, no_healthy)

    async def _stream_body(
        self,
        stream: Streaming,
        decision: RoutingChoice,
        context: RoutingContext,
        attempt: float,
        call: GovernedCall | None,
        trace: RequestTrace,
        telemetry: AttemptTelemetry,
    ) -> AsyncGenerator[bytes, None]:
        last = b""
        meter = StreamMeter()  # the usage, should the stream end before its usage chunk
        model = telemetry.streaming(stream.first)
        text = telemetry.stream_text()  # None unless the text goes on the span
        failure: UpstreamError | None = None
        try:
            meter.feed(stream.first)
            if text is not None:
                text.feed(stream.first)
            yield stream.first
            async for events in stream.rest:
                last = events
                meter.feed(events)
                if text is not None:
                    text.feed(events)
                yield events
            trace.stream_finished = True
        finally:
            await stream.close()
            # Charged even when the client went away (the upstream did the work): by the streamed
            # text when the upstream's usage chunk never came.
            usage = stream.usage() or meter.usage(context.body)
            _record_served(call, decision.deployment, usage)
            if last.startswith(ERROR_EVENT_PREFIX) or _ends_anthropic_stream_with_error(last):
                failure = _stream_failure(last)
            telemetry.stream_ended(model, usage, failure, text)  # the attempt's span ends with the stream
        if failure is not None:
            trace.stream_error = failure.code
            await self._outcomes.failed(decision.deployment, failure, attempt)
        else:
            await self._outcomes.served(decision, context, attempt, stream.usage())

    async def _cascade(
        self,
        operation: Operation,
        body: dict[str, Any],
        context: RoutingContext,
        started: float,
        call: GovernedCall | None,
        trace: RequestTrace,
        native: NativeCall | None,
    ) -> Response | None:
        """The group's cascade, for a chat request it takes (None: route it the usual way). A call
        translated from another API (``native``) cascades in chat form: every answer must be read and
        verified, so none is forwarded as sent; the route translates the final one back."""
        plan = self._cascades.get(context.group) if self._cascades is not None else None
        if plan is None or operation is not Operation.CHAT:
            return None  # (embeddings, legacy completions)
        if trace.streaming and not plan.buffers_streams:
            return None
        try:
            return await CascadeRun(self, plan, body, context, call, trace, started, native).serve()
        except UpstreamError as error:  # only the caller's fault comes out: passed on, as usual
            raise _client_error(error, failure_headers(trace)) from None

    @property
    def picker(self) -> Picker:
        return self._picker

    @property
    def attempts_per_group(self) -> int:
        return 1 + self._settings.router_settings.num_retries

    async def call_whole(
        self,
        operation: Operation,
        body: dict[str, Any],
        decision: RoutingChoice,
        context: RoutingContext,
        trace: RequestTrace,
    ) -> Completed:
        """One attempt whose answer is read whole (``body`` does not stream), with the attempt's
        telemetry and feedback; a failure is recorded on ``trace`` and raised."""
        deployment = decision.deployment
        attempt = self._outcomes.started(deployment)
        telemetry = AttemptTelemetry(
            self._tracing, self._metrics, operation, decision, body, len(trace.failures) + 1
        )
        try:
            outcome = await self._execute(operation, body, decision, context)
            if not isinstance(outcome, Completed):  # not expected: the body does not ask for a stream
                await outcome.close()
                raise UpstreamError(502, "a stream came back unasked", code="upstream_error", retryable=True)
        except UpstreamError as error:
            telemetry.failed(error)
            await self._outcomes.failed(deployment, error, attempt)
            trace.failures.append(_failed_attempt(decision, error))
            context.excluded.add(deployment.id)
            raise
        except asyncio.CancelledError as error:  # a verifier's timeout: the call counts as timed out
            telemetry.crashed(error)
            timeout = upstream_timeout(f"deployment {deployment.id} outlasted the cascade verifier's timeout")
            await asyncio.shield(self._outcomes.failed(deployment, timeout, attempt))
            raise
        except BaseException as error:
            telemetry.crashed(error)
            raise
        telemetry.answered(outcome.body, outcome.usage)
        await self._outcomes.served(decision, context, attempt, outcome.usage)
        return outcome

    async def session_floor(self, session_id: str) -> str | None:
        return await self._affinity.floor(session_id)

    def uses_passthrough(self, deployment: Deployment) -> bool:
        return self._passthrough is not None and deployment.speaks_openai

    async def _execute(
        self,
        operation: Operation,
        body: dict[str, Any],
        decision: RoutingChoice,
        context: RoutingContext,
        native: NativeCall | None = None,
    ) -> Completed | Streaming:
        deployment = decision.deployment
        if native is not None:
            if native.serves(deployment):
                return await native.execute(deployment)
            body = native.chat_body_for(deployment, body)  # what this deployment takes of the translation
        if self._passthrough is not None and deployment.speaks_openai:  # uses_passthrough, for mypy
            return await self._passthrough.execute(operation, body, deployment)
        return await self._litellm.execute(operation, body, deployment, context)


class ClosingStreamingResponse(StreamingResponse):
    """Closes its event generator before returning, also when the client left mid-stream.

    Left to itself an abandoned generator is closed whenever the garbage collector gets to it, after
    the quota layer charged the call without its usage. Closed here, its ``finally`` has filled in
    the call's usage (counted from the streamed text if need be) before the quota layer settles it.
    """

    def __init__(self, content: AsyncGenerator[bytes, None], **options: Any) -> None:
        super().__init__(content, **options)
        self._events = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._events.aclose()


def _record_served(
    call: GovernedCall | None, deployment: Deployment, usage: dict[str, Any] | None
) -> float | None:
    """Tell the governance layers who answered, with what usage; returns the cost (USD) if known."""
    cost = usage_cost(deployment, usage)
    if call is not None:
        call.served = served_by(deployment)
        call.usage = usage
        call.cost_usd = cost
    return cost


def served_by(deployment: Deployment) -> Served:
    return Served(deployment.id, deployment.group, deployment.litellm_model)


def _client_error(error: UpstreamError, routing_headers: dict[str, str]) -> UpstreamFailed:
    """An upstream refused the request as the client's fault: its own answer, passed on."""
    return UpstreamFailed(
        error.message, error.status, error.code, error.error_type, error.retry_after, routing_headers
    )


def _failed_attempt(decision: RoutingChoice, error: UpstreamError) -> FailedAttempt:
    deployment = decision.deployment
    return FailedAttempt(
        deployment.id, deployment.group, error.code, error.status, error.message, error.retry_after
    )


def _unavailable_reason(error: NoHealthyDeployment) -> str:
    if error.circuit_open:
        return "not tried, every deployment has an open circuit breaker"
    return "not tried, every deployment is cooling down or already failed"


def _exhausted(
    trace: RequestTrace, configured_fallbacks: list[str], no_healthy: NoHealthyDeployment | None
) -> NoDeploymentAvailable | UpstreamFailed:
    """The answer when nothing answered: the failures' own status when they agree (all rate-limited:
    429 with retry-after; all timed out: 504), else 502; 503 when nothing could even be tried."""
    message = failure_message(trace, configured_fallbacks)
    headers = failure_headers(trace)
    failures = trace.failures
    if not failures:
        retry_after = no_healthy.retry_after if no_healthy else 1.0
        circuit_open = no_healthy is not None and no_healthy.circuit_open
        return NoDeploymentAvailable(message, retry_after, circuit_open, headers)
    statuses = {failure.status for failure in failures}
    codes = {failure.code for failure in failures}
    status = statuses.pop() if len(statuses) == 1 else 502
    code = codes.pop() if len(codes) == 1 else "upstream_error"
    # Rate-limited: retry when the first of them may take a request again.
    waits = [failure.retry_after for failure in failures if failure.retry_after]
    return UpstreamFailed(
        message, status, code, retry_after=min(waits) if waits else None, routing_headers=headers
    )


def _ends_anthropic_stream_with_error(events: bytes) -> bool:
    """An Anthropic ``event: error`` among the last events (a raw newline never occurs inside data)."""
    return events.startswith(ANTHROPIC_ERROR_EVENT) or b"\n\n" + ANTHROPIC_ERROR_EVENT in events


def _stream_failure(event: bytes) -> UpstreamError:
    """The failure an executor's closing error event describes (``sse_error_event``)."""
    try:
        error = orjson.loads(event[len(b"data: ") :])["error"]
        return UpstreamError(502, str(error["message"]), code=str(error["code"]), retryable=False)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return UpstreamError(502, "stream broke off", code="upstream_stream_interrupted", retryable=False)
