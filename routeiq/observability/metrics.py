"""Prometheus metrics, in a registry owned by the app (two apps never share one).

With several workers each process answers ``/metrics`` for itself (scrape each, or sum); the
circuit states are cluster-wide already, since every worker mirrors the shared breaker state.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from routeiq.resilience.breaker import STATE_VALUES, CircuitBreakers
from routeiq.resilience.traffic import TrafficGate
from routeiq.state.resilient import StateHealth


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
            "Spend/audit log records dropped because the write queue was full (requests are never dropped).",
            ["log"],
            registry=self.registry,
        )
        self.audit_write_failures = Counter(
            "routeiq_audit_write_failures",
            "Audit records that could not be written.",
            registry=self.registry,
        )

    def watch(self, gate: TrafficGate, breakers: CircuitBreakers | None, state_health: StateHealth) -> None:
        """Report values that live elsewhere, read at scrape time."""
        self.registry.register(_LiveCollector(gate, breakers, state_health))
        state_health.on_fallback = lambda feature: self.state_fallbacks.labels(feature).inc()

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
