"""The request ledger: each model request leaves exactly one decision record, one spend row when a
deployment answered, and one warning line when it failed, written once its response has been sent.

It sits just inside the request-id layer, outside everything that can refuse a request (shedding,
auth, policy, quotas, guardrails, validation), so a request refused anywhere is recorded as surely
as one served; and it is the only place that writes these records, so none is written twice. The
dispatcher fills in the ``RequestTrace`` it puts on the scope; the rest (status, error code) is read
off the response itself. Nothing here waits: the decision log and the spend log are both queues
written in batches off the request path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeiq.governance.call import MODEL_CALL_SUFFIXES, GovernedCall, Served, current_call
from routeiq.observability import genai
from routeiq.observability.decision_records import decision_record
from routeiq.observability.tracing import Tracing
from routeiq.routing.decision import RequestTrace, decision_event
from routeiq.runtime_handle import RuntimeHandle
from routeiq.store.records import SpendRecord

if TYPE_CHECKING:  # typing only: the runtime module imports LiteLLM
    from routeiq.runtime import Runtime

logger = logging.getLogger("routeiq.request")

TRACE_KEY = "routing_trace"
OUTCOME_KEY = "request_outcome"  # (status, error code), for the request's span
MAX_ERROR_BODY_BYTES = 16_384  # error envelopes are small; never buffer a large body
SHED_CODES = frozenset({"overloaded", "draining"})


def current_trace(scope: Scope) -> RequestTrace | None:
    trace = scope.get("state", {}).get(TRACE_KEY)
    return trace if isinstance(trace, RequestTrace) else None


def is_model_request(scope: Scope) -> bool:
    return (
        scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith(MODEL_CALL_SUFFIXES)
    )


class RequestLedgerMiddleware:
    def __init__(self, app: ASGIApp, runtime: RuntimeHandle, tracing: Tracing | None = None) -> None:
        self.app = app
        self._runtime = runtime
        self._tracing = tracing if tracing is not None else Tracing.off()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_model_request(scope):
            await self.app(scope, receive, send)
            return
        if not self._tracing.enabled:
            await self._serve(scope, receive, send)
            return
        # The request's own span: every governance, routing and upstream span below is its child.
        with self._tracing.span("routeiq.request") as span:
            try:
                await self._serve(scope, receive, send)
            finally:
                if span.is_recording():
                    span.set_attributes(request_span_attributes(scope))

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived = Arrival(time.time(), time.perf_counter(), scope["path"])
        trace = RequestTrace()
        state = scope.setdefault("state", {})
        state[TRACE_KEY] = trace
        status = 0
        error_body = bytearray()

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif status >= 400 and len(error_body) < MAX_ERROR_BODY_BYTES:
                error_body.extend(message.get("body", b""))
            await send(message)

        crashed = False
        try:
            await self.app(scope, receive, observe)
        except Exception:
            crashed = True  # the request-id layer answers 500 internal_error
            raise
        finally:
            runtime = self._runtime.started
            if runtime is not None:
                code: str | None = "internal_error"
                if crashed and status == 0:
                    status = 500
                else:
                    code = _error_code(bytes(error_body)) if status >= 400 else trace.stream_error
                close_request(
                    runtime,
                    state.get("request_id", ""),
                    current_call(scope),
                    trace,
                    status,
                    code,
                    arrived,
                )
                outcome = request_outcome(trace, status, code)
                runtime.cluster_metrics.observe(
                    trace, current_call(scope), status, outcome, code, _elapsed(state)
                )
                state[OUTCOME_KEY] = (status, code)


def request_span_attributes(scope: Scope) -> dict[str, Any]:
    """What the request's span says once it is answered: the operation and group asked for, the
    routing, the outcome, the usage charged; ids and classes, never prompt text or who asked."""
    state = scope.get("state", {})
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": genai.operation_for_path(scope["path"]),
        "routeiq.request_id": state.get("request_id", ""),
    }
    trace = current_trace(scope)
    outcome = state.get(OUTCOME_KEY)
    if trace is not None and outcome is not None:
        status, code = outcome
        attributes["routeiq.outcome"] = request_outcome(trace, status, code)
        attributes["http.response.status_code"] = status
        if code:
            attributes["error.type"] = code
        if trace.group is not None:
            attributes["gen_ai.request.model"] = trace.group
            attributes["routeiq.group"] = trace.group
        if trace.strategy is not None:
            attributes["routeiq.routing.strategy"] = trace.strategy
        attributes["routeiq.attempted_deployments"] = trace.attempted()
        attributes["routeiq.fallback_groups"] = trace.fallbacks_tried
        if trace.served and trace.decision is not None:
            attributes["routeiq.deployment.id"] = trace.decision.deployment.id
    call = current_call(scope)
    if call is not None and call.served is not None:
        input_tokens = _tokens(call.usage, "prompt_tokens")
        output_tokens = _tokens(call.usage, "completion_tokens")
        attributes["gen_ai.usage.input_tokens"] = input_tokens
        attributes["gen_ai.usage.output_tokens"] = output_tokens
        if call.cost_usd is not None:
            attributes["routeiq.cost_usd"] = call.cost_usd
    return attributes


@dataclass(frozen=True, slots=True)
class Arrival:
    """When a request arrived: UNIX time for the record, the monotonic clock for its latency."""

    at: float
    clock: float
    route: str = ""


def close_request(
    runtime: Runtime,
    request_id: str,
    call: GovernedCall | None,
    trace: RequestTrace,
    status: int,
    code: str | None,
    arrival: Arrival | None = None,
) -> None:
    """Write the request's records: ``runtime`` gives the decision log, the decision store and the
    spend log."""
    outcome = request_outcome(trace, status, code)
    if trace.experiment is not None and trace.arm is not None:
        observe_arm(runtime, trace, call, outcome, code, arrival)
    if runtime.decisions.enabled:
        runtime.decisions.record(decision_event(trace, request_id, status, outcome, code))
    if runtime.decision_store is not None and arrival is not None:
        runtime.decision_store.submit(
            decision_record(
                trace,
                call,
                request_id=request_id,
                route=arrival.route,
                started_at=arrival.at,
                latency_ms=(time.perf_counter() - arrival.clock) * 1000,
                status=status,
                outcome=outcome,
                error_code=code,
                log_prompts=runtime.settings.log_prompts,
            )
        )
    if call is not None and call.served is not None:
        # Every served request, whatever plugins are on; the cost tracker keeps only live counters.
        for record in spend_records(call):
            runtime.spend_log.submit(record)
    if outcome in ("failed", "interrupted"):
        logger.warning(
            "request failed %s", orjson.dumps(failure_fields(trace, request_id, status, code)).decode()
        )


def observe_arm(
    runtime: Runtime,
    trace: RequestTrace,
    call: GovernedCall | None,
    outcome: str,
    code: str | None,
    arrival: Arrival | None,
) -> None:
    """Count the request in its experiment arm's outcomes (an error: its class, else cost, latency,
    tokens and tier; served by a fallback group: flagged as such)."""
    assert trace.experiment is not None and trace.arm is not None
    served = call.served if call is not None else None
    decision = trace.decision if trace.served else None
    failed = outcome in ("failed", "interrupted")
    runtime.experiments.observe(
        experiment=trace.experiment,
        arm=trace.arm,
        requested_group=trace.group,
        served_group=decision.deployment.group if decision is not None else None,
        tier=(decision.tier or decision.deployment.tier) if decision is not None else None,
        error=(code or outcome) if failed or decision is None else None,
        cost=(call.cost_usd or 0.0) if call is not None and served is not None else None,
        latency_ms=(time.perf_counter() - arrival.clock) * 1000 if arrival is not None else None,
        input_tokens=_tokens(call.usage if call is not None else None, "prompt_tokens"),
        output_tokens=_tokens(call.usage if call is not None else None, "completion_tokens"),
        shadow=trace.shadow,
        served_deployment=decision.deployment.id if decision is not None else None,
    )


def request_outcome(trace: RequestTrace, status: int, code: str | None) -> str:
    """ok, shed, rejected (refused before any deployment was asked), failed, interrupted (a stream
    that broke off after its first byte) or client_disconnected."""
    if status == 0:
        return "client_disconnected"  # gone before any response started
    if status == 503 and code in SHED_CODES:
        return "shed"
    if status >= 500 or (status >= 400 and trace.failures):
        return "failed"
    if status >= 400:
        return "rejected"
    if trace.stream_error is not None:
        return "interrupted"
    if trace.streaming and trace.served and not trace.stream_finished:
        return "client_disconnected"
    return "ok"


def failure_fields(trace: RequestTrace, request_id: str, status: int, code: str | None) -> dict[str, object]:
    """What a failed request's log line says: ids, classes and statuses, never prompt or message text."""
    return {
        "request_id": request_id,
        "group": trace.group,
        "status": status,
        "error_code": code,
        "attempted_deployments": trace.attempted(),
        "failure_classes": [failure.code for failure in trace.failures],
        "fallback_groups": trace.fallbacks_tried,
        "skipped_groups": list(trace.skipped),
    }


def spend_records(call: GovernedCall) -> list[SpendRecord]:
    """One row per upstream call: a cascade's every step and judge call, else the one that answered."""
    if not call.charges:
        return [spend_record(call)]
    return [
        spend_record(call, charge.served, charge.usage, charge.cost_usd)  # each call as it was made
        for charge in call.charges
    ]


def spend_record(
    call: GovernedCall,
    served: Served | None = None,
    usage: dict[str, Any] | None = None,
    cost_usd: float | None = None,
) -> SpendRecord:
    if served is None:
        served, usage, cost_usd = call.served, call.usage, call.cost_usd
    assert served is not None
    return SpendRecord(
        at=time.time(),
        request_id=call.request_id,
        group=served.group,
        deployment_id=served.deployment_id,
        model=served.model,
        input_tokens=_tokens(usage, "prompt_tokens"),
        output_tokens=_tokens(usage, "completion_tokens"),
        cost_usd=cost_usd or 0.0,  # 0 when the deployment's prices are unknown
        key_id=call.identity.key_id,
        team=call.identity.team,
        user=call.identity.user,
    )


def _elapsed(state: dict[str, Any]) -> float | None:
    """Seconds since the request arrived (the request-id layer notes when)."""
    started = state.get("started")
    return time.perf_counter() - started if isinstance(started, float) else None


def _tokens(usage: dict[str, Any] | None, field: str) -> int:
    value = (usage or {}).get(field)
    return int(value) if isinstance(value, int | float) else 0


def _error_code(body: bytes) -> str | None:
    try:
        error = orjson.loads(body)["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(error, dict):
        return None
    code = error.get("code") or error.get("type")  # validation errors carry only a type
    return code if isinstance(code, str) else None
