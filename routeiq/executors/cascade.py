"""Running a cascade (``llmrouter-cascade``) for one chat request (or a Messages or Responses call, as chat).

Each step's deployment answers in full (never streamed: the answer must be read before anyone sees
it); the verifier scores it; at or above the threshold it is served, below it the next step is asked.
The last step's answer is served unverified. A step that cannot answer (every deployment of it failed,
cooling down or unable to take the request) is passed over; a verifier that fails or times out counts
as a rejection. If no step answered at all the dispatcher carries on as for any group (the group's
other deployments, then its fallbacks); if some step answered, the client gets the last answer there
was, even one the verifier turned down: a cascade never fails a request an answer exists for.

Every call made is charged: the request's usage and cost become the sums (what quotas settle), and
each call is its own spend row (``GovernedCall.charges``). A judge verifier's call is charged too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from starlette.responses import Response, StreamingResponse

from routeiq.executors.base import Completed, Operation, UpstreamError
from routeiq.executors.native import NativeCall
from routeiq.executors.sse_replay import completion_events
from routeiq.governance.call import Charge, GovernedCall, Served
from routeiq.governance.quota import prompt_tokens
from routeiq.routing.cascade import (
    CascadePlan,
    CascadeStep,
    CascadeStrategy,
    header_value,
    step_trail,
    steps_from,
)
from routeiq.routing.constraints import NoCapableDeployment
from routeiq.routing.decision import RequestTrace, decision_headers, experiment_headers
from routeiq.routing.deployments import Deployment, usage_cost
from routeiq.routing.picker import Picker
from routeiq.routing.strategy import NoHealthyDeployment, RoutingChoice, RoutingContext
from routeiq.routing.verifiers import Answer, VerifierFailed

logger = logging.getLogger("routeiq.routing")

CASCADE_HEADER = "x-routeiq-cascade"
STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")


class Attempts(Protocol):
    """What a cascade needs of the dispatcher: its picker, its retry count, and one whole call."""

    @property
    def picker(self) -> Picker: ...

    @property
    def attempts_per_group(self) -> int: ...

    async def call_whole(
        self,
        operation: Operation,
        body: dict[str, Any],
        decision: RoutingChoice,
        context: RoutingContext,
        trace: RequestTrace,
    ) -> Completed: ...


@dataclass
class CascadeRun:
    """One request's cascade. ``serve`` answers, or returns None when no step answered."""

    attempts: Attempts
    plan: CascadePlan
    body: dict[str, Any]  # the chat body as the dispatcher sends it (model = the group)
    context: RoutingContext
    call: GovernedCall | None
    trace: RequestTrace
    started: float
    native: NativeCall | None = None  # a call translated from another API: fits each step's chat body
    strategy: CascadeStrategy = field(default_factory=CascadeStrategy)
    charges: list[tuple[Deployment, dict[str, Any] | None]] = field(default_factory=list)
    called: list[str] = field(default_factory=list)  # every step deployment called, in order
    upstream_seconds: float = 0.0

    async def serve(self) -> Response | None:
        plan, body = self.plan, self._step_body()
        trail: list[tuple[str, str | None]] = []
        final: tuple[RoutingChoice, Completed, dict[str, Any]] | None = None
        steps = steps_from(plan.steps, self.context.session_floor)  # a session's tier only rises
        for index, step in enumerate(steps):
            try:
                answered = await self._answer(step, body)
            except UpstreamError:  # the caller's fault, says the upstream: passed on unless we have an answer
                if final is None:
                    raise
                answered = None
            if answered is None:
                trail.append((step.label, "failed"))
                continue
            decision, completed, parsed = answered
            if final is not None:
                self.trace.escalated.append(final[0].deployment.id)
            final = (decision, completed, parsed)
            if index == len(steps) - 1:
                trail.append((step.label, None))
                break
            verdict, accepted = await self._verify(parsed)
            trail.append((step.label, verdict))
            if accepted:
                break
        self.trace.cascade = step_trail(trail)
        if final is None:
            return None
        return self._response(*final)

    def _step_body(self) -> dict[str, Any]:
        body = dict(self.body)
        body.pop("stream", None)  # every step is read whole before anything is sent
        body.pop("stream_options", None)
        if self.plan.verifier.wants_logprobs:
            body["logprobs"] = True
        return body

    async def _answer(
        self, step: CascadeStep, body: dict[str, Any]
    ) -> tuple[RoutingChoice, Completed, dict[str, Any]] | None:
        """The step's answer: its cheapest healthy deployment, another of the step's on failure."""
        context = self.context
        for _ in range(self.attempts.attempts_per_group):
            routing_started = time.perf_counter()
            try:
                candidates = await self.attempts.picker.candidates(context.group, context)
            except (NoHealthyDeployment, NoCapableDeployment):
                return None
            members = [candidate for candidate in candidates if candidate.id in step.deployment_ids]
            if not members:
                return None
            decision = self.strategy.choose(members, context)
            context.decision, context.candidates = decision, members
            self.trace.decision = decision
            self.trace.routing_seconds += time.perf_counter() - routing_started
            self.called.append(decision.deployment.id)
            step_body = self.native.chat_body_for(decision.deployment, body) if self.native else body
            try:
                completed = await self._timed(Operation.CHAT, step_body, decision, context, self.trace)
            except UpstreamError as error:
                if not error.retryable:
                    raise  # the caller's fault: the dispatcher passes the upstream's answer on
                continue
            self.charges.append((decision.deployment, completed.usage))  # it answered: it is paid for
            parsed = _parsed(completed.body)
            if parsed is None:  # (executors refuse a 200 that is not JSON already; this is not an object)
                continue
            return decision, completed, parsed
        return None

    async def _timed(
        self,
        operation: Operation,
        body: dict[str, Any],
        decision: RoutingChoice,
        context: RoutingContext,
        trace: RequestTrace,
    ) -> Completed:
        began = time.perf_counter()
        try:
            return await self.attempts.call_whole(operation, body, decision, context, trace)
        finally:
            self.upstream_seconds += time.perf_counter() - began

    async def _verify(self, completion: dict[str, Any]) -> tuple[str, bool]:
        """The verdict for ``x-routeiq-cascade`` (the score, ``error`` or ``timeout``) and whether the
        answer stands."""
        answer = Answer(self.context.signals.text, _answer_text(completion), completion)
        try:
            score = await asyncio.wait_for(
                self.plan.verifier.score(answer, self._judge), self.plan.timeout_seconds
            )
        except TimeoutError:
            return "timeout", False
        except VerifierFailed as error:
            logger.info("cascade verifier %s failed: %s", self.plan.verifier.name, error)
            return "error", False
        except Exception:  # a bug in a verifier escalates too; it must not fail the request
            logger.exception("cascade verifier %s crashed", self.plan.verifier.name)
            return "error", False
        return f"{score:.2f}", score >= self.plan.threshold

    async def _judge(self, group: str, body: dict[str, Any]) -> str:
        """A judge verifier's call to ``group``: charged like any call, its failures its own (they
        are not the request's)."""
        picker = self.attempts.picker
        context = RoutingContext(request_id=self.context.request_id, group=group, body=body)
        try:
            candidates = await picker.candidates(group, context)
        except (NoHealthyDeployment, NoCapableDeployment) as error:
            raise VerifierFailed(f"no judge deployment available: {error}") from None
        decision = picker.strategy_for(group).choose(candidates, context)
        context.decision, context.candidates = decision, candidates  # LiteLLM's hook serves this pick
        try:
            completed = await self._timed(
                Operation.CHAT, {**body, "model": group}, decision, context, RequestTrace(group=group)
            )
        except UpstreamError as error:
            raise VerifierFailed(f"the judge failed: {error.message}") from None
        except asyncio.CancelledError:
            # Cut off by the verifier's timeout: the judge had the prompt, which its provider bills.
            # Its usage never came back, so the prompt is charged at the quota layer's estimate.
            estimate = {"prompt_tokens": prompt_tokens(body), "completion_tokens": 0}
            self.charges.append((decision.deployment, estimate))
            raise
        self.charges.append((decision.deployment, completed.usage))
        parsed = _parsed(completed.body)
        content = _answer_text(parsed) if parsed is not None else None
        if not content:
            raise VerifierFailed("the judge sent no text")
        return content

    def _response(
        self, decision: RoutingChoice, completed: Completed, completion: dict[str, Any]
    ) -> Response:
        plan, trace, context = self.plan, self.trace, self.context
        deployment = decision.deployment
        trail = trace.cascade or ""
        served = RoutingChoice(
            deployment,
            decision.strategy,
            f"cascade {trail} (verifier {plan.verifier.name}, threshold {plan.threshold:g})",
            deployment.tier,
            scores=decision.scores,
        )
        trace.decision, trace.served = served, True
        total_cost = self._charge()
        overhead_ms = max(0.0, (time.perf_counter() - self.started - self.upstream_seconds) * 1000)
        trace.overhead_ms = overhead_ms
        failed = [failure.deployment for failure in trace.failures]
        headers = decision_headers(served, context, failed, overhead_ms)
        headers["x-routeiq-attempted-deployments"] = ",".join(self.called)
        headers["x-routeiq-reason"] = header_value(served.reason)
        headers[CASCADE_HEADER] = header_value(trail)
        if total_cost is not None:
            headers["x-routeiq-cost"] = f"{total_cost:.10f}".rstrip("0").rstrip(".")
        if trace.experiment is not None:
            headers.update(experiment_headers(trace))
        body = completed.body
        if plan.verifier.wants_logprobs and not self.body.get("logprobs"):
            for choice in completion.get("choices") or []:  # asked for by the cascade, not the client
                if isinstance(choice, dict):
                    choice["logprobs"] = None
            body = orjson.dumps(completion)
        if not trace.streaming:
            return Response(body, media_type="application/json", headers=headers)
        options = self.body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        trace.stream_finished = True  # sent whole, in one chunk
        events = _one_chunk(completion_events(completion, include_usage))
        return StreamingResponse(
            events, media_type="text/event-stream", headers={**headers, **STREAM_HEADERS}
        )

    def _charge(self) -> float | None:
        """Tell governance about every call: the sums for quotas, each one for the spend log."""
        charges = [
            Charge(Served(d.id, d.group, d.litellm_model), usage, usage_cost(d, usage))
            for d, usage in self.charges
        ]
        costs = [charge.cost_usd for charge in charges if charge.cost_usd is not None]
        total_cost = sum(costs) if costs else None
        if self.call is not None:
            final = self.trace.decision
            assert final is not None
            self.call.served = Served(
                final.deployment.id, final.deployment.group, final.deployment.litellm_model
            )
            self.call.usage = summed_usage([charge.usage for charge in charges])
            self.call.cost_usd = total_cost
            self.call.charges = charges
        return total_cost


def summed_usage(usages: Sequence[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The token counts of several calls added up (None when no call reported any)."""
    known = [usage for usage in usages if usage]
    if not known:
        return None
    total: dict[str, Any] = {}
    for name in USAGE_FIELDS:
        values = [usage.get(name) for usage in known]
        numbers = [value for value in values if isinstance(value, int) and not isinstance(value, bool)]
        if numbers:
            total[name] = sum(numbers)
    return total


def _parsed(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


async def _one_chunk(events: bytes) -> AsyncIterator[bytes]:
    """A stream like any other (the translated APIs re-encode a stream event by event), in one chunk."""
    yield events


def _answer_text(completion: dict[str, Any]) -> str:
    """The first choice's text; a tool call's name and arguments when it called a tool instead."""
    try:
        message = completion["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return ""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str) and content:
        return content
    calls = message.get("tool_calls")
    return orjson.dumps(calls).decode() if calls else ""
