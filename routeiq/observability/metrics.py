"""Prometheus metrics, in a registry owned by the app (two apps never share one).

With several workers each process answers ``/metrics`` for itself (scrape each, or sum); the
circuit states are cluster-wide already, since every worker mirrors the shared breaker state.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from routeiq.resilience.breaker import STATE_VALUES, CircuitBreakers
from routeiq.resilience.traffic import TrafficGate
from routeiq.state.resilient import StateHealth

# The OpenTelemetry GenAI metrics under their Prometheus names (what an OTLP-to-Prometheus export of
# gen_ai.client.token.usage, gen_ai.server.request.duration and gen_ai.server.time_to_first_token is
# called), with the convention's advisory bucket boundaries and its attributes as labels.
GENAI_LABELS = (
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
MAX_RESPONSE_MODELS = 64  # distinct gen_ai_response_model values per process; later ones read "_OTHER"
OTHER = "_OTHER"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._live: _LiveCollector | None = None
        self.genai_token_usage = Histogram(
            "gen_ai_client_token_usage",
            "GenAI token usage per upstream call (gen_ai.client.token.usage), by token type.",
            [*GENAI_LABELS, "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.genai_request_duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "Duration of each upstream call until its last byte (gen_ai.server.request.duration); "
            "error_type is empty when it answered.",
            [*GENAI_LABELS, "error_type"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.genai_time_to_first_token = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from sending a streamed upstream call to its first chunk "
            "(gen_ai.server.time_to_first_token).",
            GENAI_LABELS,
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self._response_models: set[str] = set()
        # The labelled children per label set: prometheus_client's labels() costs microseconds a call,
        # and these are observed on every upstream call. Bounded as the labels are.
        self._genai_durations: dict[tuple[str, ...], Any] = {}  # by labels and error type
        self._genai_tokens: dict[tuple[str, ...], tuple[Any, Any]] = {}  # input, output
        self._genai_first_tokens: dict[tuple[str, ...], Any] = {}  # streams only
        self._served: dict[tuple[str, ...], tuple[Any, Any]] = {}  # requests (ok), routing_decisions
        self.requests = Counter(
            "routeiq_requests",
            "Requests answered by a deployment, by group, deployment and outcome.",
            ["group", "deployment", "outcome"],
            registry=self.registry,
        )
        self.attempt_failures = Counter(
            "routeiq_attempt_failures",
            "Failed attempts on a deployment (each retry or fallback hop counts).",
            ["deployment", "code"],
            registry=self.registry,
        )
        self.state_fallbacks = Counter(
            "routeiq_state_fallbacks",
            "Shared-state calls served from per-process state because Redis was unreachable.",
            ["feature"],
            registry=self.registry,
        )
        self.draining = Gauge(
            "routeiq_draining", "1 while this worker drains after SIGTERM.", registry=self.registry
        )
        self.routing_decisions = Counter(
            "routeiq_routing_decisions",
            "Routing decisions by strategy, tier and served model.",
            ["strategy", "tier", "served_model"],
            registry=self.registry,
        )
        self.routing_latency = Histogram(
            "routeiq_routing_latency_seconds",
            "Time to decide a deployment (candidates, classification, strategy).",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05),
            registry=self.registry,
        )
        self.classifier_fallbacks = Counter(
            "routeiq_classifier_fallbacks",
            "Requests routed by the length rule because the classifier is unavailable.",
            registry=self.registry,
        )
        self.policy_denials = Counter(
            "routeiq_policy_denials",
            "Requests refused by the policy engine, by deciding rule (`default`: the default action).",
            ["rule"],
            registry=self.registry,
        )
        self.policy_failures = Counter(
            "routeiq_policy_failures",
            "Policy evaluations that raised, by failure mode (`open`: the request was let through).",
            ["failure_mode"],
            registry=self.registry,
        )

        self.log_records_dropped = Counter(
            "routeiq_log_records_dropped",
            "Spend and decision log records dropped because the write queue was full (requests never are).",
            ["log"],
            registry=self.registry,
        )
        self.audit_write_failures = Counter(
            "routeiq_audit_write_failures",
            "Audit records that could not be written.",
            registry=self.registry,
        )

    def watch(self, gate: TrafficGate, breakers: CircuitBreakers | None, state_health: StateHealth) -> None:
        """Report values that live elsewhere, read at scrape time. Called again by a config apply's
        new runtime (new breakers): the new collector replaces the old one."""
        if self._live is not None:
            self.registry.unregister(self._live)
        self._live = _LiveCollector(gate, breakers, state_health)
        self.registry.register(self._live)
        state_health.on_fallback = lambda feature: self.state_fallbacks.labels(feature).inc()

    def response_model_label(self, model: str | None, requested: str) -> str:
        """The upstream's answer names its model; the label keeps at most ``MAX_RESPONSE_MODELS``
        distinct values, so an upstream inventing names cannot grow the series without bound."""
        if not model:
            return requested
        if model in self._response_models:
            return model
        if len(self._response_models) >= MAX_RESPONSE_MODELS:
            return OTHER
        self._response_models.add(model)
        return model

    def count_served(
        self, group: str, deployment_id: str, strategy: str, tier: str, upstream_model: str
    ) -> None:
        """A request a deployment answered: ``routeiq_requests`` (outcome ok) and
        ``routeiq_routing_decisions``, through cached children (this runs on every request)."""
        key = (group, deployment_id, strategy, tier, upstream_model)
        children = self._served.get(key)
        if children is None:
            children = self._served[key] = (
                self.requests.labels(group, deployment_id, "ok"),
                self.routing_decisions.labels(strategy, tier, upstream_model),
            )
        children[0].inc()
        children[1].inc()

    def record_genai_call(
        self,
        labels: tuple[str, str, str, str],
        seconds: float,
        *,
        error_type: str = "",
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        first_token_seconds: float | None = None,
    ) -> None:
        """One upstream call: ``labels`` are operation, provider, request model, response model."""
        key = (*labels, error_type)
        duration = self._genai_durations.get(key)
        if duration is None:
            duration = self._genai_durations[key] = self.genai_request_duration.labels(*key)
        duration.observe(seconds)
        if input_tokens is not None or output_tokens is not None:
            tokens = self._genai_tokens.get(labels)
            if tokens is None:
                tokens = self._genai_tokens[labels] = (
                    self.genai_token_usage.labels(*labels, "input"),
                    self.genai_token_usage.labels(*labels, "output"),
                )
            if input_tokens is not None:
                tokens[0].observe(input_tokens)
            if output_tokens is not None:
                tokens[1].observe(output_tokens)
        if first_token_seconds is not None:
            first_token = self._genai_first_tokens.get(labels)
            if first_token is None:
                first_token = self._genai_first_tokens[labels] = self.genai_time_to_first_token.labels(
                    *labels
                )
            first_token.observe(first_token_seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    def __init__(
        self, gate: TrafficGate, breakers: CircuitBreakers | None, state_health: StateHealth
    ) -> None:
        self._gate = gate
        self._breakers = breakers
        self._state_health = state_health

    def collect(self):  # type: ignore[no-untyped-def]
        in_flight = GaugeMetricFamily("routeiq_in_flight_requests", "Requests being served by this worker.")
        in_flight.add_metric([], self._gate.in_flight)
        yield in_flight
        queued = GaugeMetricFamily("routeiq_queue_depth", "Requests waiting for a slot on this worker.")
        queued.add_metric([], self._gate.queue_depth)
        yield queued
        shed = GaugeMetricFamily(
            "routeiq_shed_requests_total", "Requests refused with 503, by reason.", labels=["reason"]
        )
        for reason, count in self._gate.shed.items():
            shed.add_metric([reason], count)
        yield shed
        degraded = GaugeMetricFamily("routeiq_state_degraded", "1 while shared state (Redis) is unreachable.")
        degraded.add_metric([], 1 if self._state_health.degraded else 0)
        yield degraded
        if self._breakers is not None:
            circuit = GaugeMetricFamily(
                "routeiq_circuit_state",
                "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open.",
                labels=["deployment"],
            )
            for deployment_id, view in self._breakers.states().items():
                circuit.add_metric([deployment_id], STATE_VALUES[view["state"]])
            yield circuit
