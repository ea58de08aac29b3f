"""One upstream attempt as telemetry: its span (GenAI conventions) and its GenAI metrics.

The dispatcher makes one ``AttemptTelemetry`` per attempt and tells it how the attempt ended: failed,
answered whole, or streaming (then again when the stream ends, which is when the span ends and the
duration is measured). With tracing off it holds the shared no-op span and only the Prometheus
metrics are recorded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from routeiq.executors.base import Operation, UpstreamError
from routeiq.observability import genai
from routeiq.observability.metrics import Metrics
from routeiq.observability.tracing import NOT_RECORDING, Tracing, mark_failed
from routeiq.routing.strategy import RoutingChoice


class AttemptTelemetry:
    __slots__ = (
        "_capture",
        "_labels",
        "_metrics",
        "_request_model",
        "first_token_seconds",
        "span",
        "started",
    )

    def __init__(
        self,
        tracing: Tracing,
        metrics: Metrics,
        operation: Operation,
        decision: RoutingChoice,
        body: Mapping[str, Any],
        number: int,
    ) -> None:
        deployment = decision.deployment
        self.started = time.perf_counter()
        self.first_token_seconds: float | None = None
        self._metrics = metrics
        self._request_model = deployment.upstream_model
        self._labels = (genai.operation_name(operation), genai.provider_name(deployment), self._request_model)
        self._capture = tracing.capture_content
        self.span: Span = NOT_RECORDING
        if tracing.enabled:
            self.span = tracing.start(f"{self._labels[0]} {self._request_model}", SpanKind.CLIENT)
            if self.span.is_recording():
                self.span.set_attributes(
                    {
                        **genai.attempt_attributes(operation, deployment),
                        **genai.request_parameters(body),
                        "routeiq.attempt": number,
                        "routeiq.routing.strategy": decision.strategy,
                    }
                )
                if self._capture:
                    self.span.set_attribute("gen_ai.input.messages", genai.input_messages(operation, body))

    def failed(self, error: UpstreamError) -> None:
        """The attempt failed before an answer: the error class on the span and in the metrics."""
        seconds = time.perf_counter() - self.started
        self._metrics.record_genai_call((*self._labels, self._request_model), seconds, error_type=error.code)
        span = self.span
        if span.is_recording():
            span.set_attributes({"error.type": error.code, "http.response.status_code": error.status})
            span.set_status(Status(StatusCode.ERROR, error.message))
            span.end()

    def crashed(self, error: BaseException) -> None:
        """The attempt ended in something other than an upstream failure (a bug, a cancellation):
        the span ends marked with its class; no GenAI metric, since no upstream outcome is known."""
        if self.span.is_recording():
            mark_failed(self.span, error)
            self.span.end()

    def answered(self, body: bytes, usage: Mapping[str, Any] | None) -> None:
        """A whole answer: response model, usage, finish reasons (and its text when captured)."""
        seconds = time.perf_counter() - self.started
        model = genai.response_model(body)
        input_tokens, output_tokens = genai.usage_tokens(usage)
        self._metrics.record_genai_call(
            self._metric_labels(model), seconds, input_tokens=input_tokens, output_tokens=output_tokens
        )
        span = self.span
        if span.is_recording():
            self._set_response(model, input_tokens, output_tokens, genai.finish_reasons(body))
            if self._capture:
                output = genai.output_messages(body)
                if output is not None:
                    span.set_attribute("gen_ai.output.messages", output)
            span.end()

    def streaming(self, first: bytes) -> str | None:
        """The stream's first event arrived; returns the response model it names."""
        self.first_token_seconds = time.perf_counter() - self.started
        model = genai.response_model(first)
        if self.span.is_recording():
            self.span.set_attribute("routeiq.time_to_first_chunk_seconds", self.first_token_seconds)
        return model

    def stream_text(self) -> genai.StreamedText | None:
        """Somewhere to collect the streamed text, when it is to be put on the span."""
        return genai.StreamedText() if self._capture and self.span.is_recording() else None

    def stream_ended(
        self,
        model: str | None,
        usage: Mapping[str, Any] | None,
        error: UpstreamError | None,
        text: genai.StreamedText | None,
    ) -> None:
        """The stream's last chunk went out (or it broke off): the span ends now."""
        seconds = time.perf_counter() - self.started
        input_tokens, output_tokens = genai.usage_tokens(usage)
        self._metrics.record_genai_call(
            self._metric_labels(model),
            seconds,
            error_type=error.code if error is not None else "",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            first_token_seconds=self.first_token_seconds,
        )
        span = self.span
        if not span.is_recording():
            return
        self._set_response(model, input_tokens, output_tokens, sorted(text.finish) if text else [])
        if text is not None:
            span.set_attribute("gen_ai.output.messages", text.as_messages())
        if error is not None:
            span.set_attributes({"error.type": error.code})
            span.set_status(Status(StatusCode.ERROR, error.message))
        span.end()

    def _metric_labels(self, model: str | None) -> tuple[str, str, str, str]:
        return (*self._labels, self._metrics.response_model_label(model, self._request_model))

    def _set_response(
        self, model: str | None, input_tokens: int | None, output_tokens: int | None, finish: list[str]
    ) -> None:
        attributes: dict[str, Any] = {"gen_ai.response.model": model or self._request_model}
        if input_tokens is not None:
            attributes["gen_ai.usage.input_tokens"] = input_tokens
        if output_tokens is not None:
            attributes["gen_ai.usage.output_tokens"] = output_tokens
        if finish:
            attributes["gen_ai.response.finish_reasons"] = finish
        self.span.set_attributes(attributes)


def record_choice(span: Span, target: str, requested_group: str, decision: RoutingChoice) -> None:
    """A routing span's outcome: the strategy, the tier, the deployment chosen and why."""
    if not span.is_recording():
        return
    attributes: dict[str, Any] = {
        "routeiq.routing.group": target,
        "routeiq.routing.fallback": target != requested_group,
        "routeiq.routing.strategy": decision.strategy,
        "routeiq.routing.deployment": decision.deployment.id,
        "routeiq.routing.reason": decision.reason,
    }
    tier = decision.tier or decision.deployment.tier
    if tier:
        attributes["routeiq.routing.tier"] = tier
    if decision.assessment is not None:
        attributes["routeiq.routing.category"] = decision.assessment.category
        attributes["routeiq.routing.p_strong"] = decision.assessment.p_strong
    span.set_attributes(attributes)
