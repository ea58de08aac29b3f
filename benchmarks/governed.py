"""Governed traffic: the RouteIQ configurations production runs, as benchmark scenarios.

``make bench`` used to measure only the passthrough with the master key and nothing configured.
Production traffic carries virtual keys with limits, quotas shared through Redis, a policy file and
plugins; each of those costs CPU per request. Every scenario here is ``routeiq serve`` on the same
mock, measured in the same run and by the same phases as the floor, so its ratio to the floor says
what that configuration costs:

==================  =======================================================================
``routeiq_passthrough``  master key, in-memory state, nothing configured (the existing target)
``master_redis``         master key, Redis state
``master_governed``      master key, Redis, policy file, ``pii`` + ``prompt_injection`` + ``cost_tracker``
``vkey_redis``           virtual key with rpm/tpm/budget limits, Redis, no plugins
``vkey_governed``        virtual key with limits, Redis, policy file, the three plugins
``routeiq_traced``       as ``routeiq_passthrough``, with OpenTelemetry tracing on: 10% of requests
                         sampled, exported over OTLP/HTTP to the mock (which answers 200)
``routeiq_dashboard``    as ``routeiq_passthrough``, with two admin dashboards connected to
                         ``/admin/metrics/stream`` for the whole run (the admin plane must not slow
                         the data plane: same target as the passthrough)
==================  =======================================================================

Every RouteIQ scenario runs with the decision log on (its default: a line per request on stderr,
a row per request in the decision store).

Redis is one database (db 7 by default, which the test suite never uses), flushed before every
measured window of a Redis scenario so quota counters start from zero and no limit is ever reached:
the point is the cost of checking limits, not of refusing. Each scenario also writes under its own
key prefix, so scenarios that run side by side never read each other's counters or notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import orjson

HOST = "127.0.0.1"
ADMIN_KEY = "sk-bench-admin"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
# A realistic price, so the cost tracker and budget limits have a cost to count (USD per token).
INPUT_COST_PER_TOKEN = 0.0000025
OUTPUT_COST_PER_TOKEN = 0.00001

# Limits far above what a run can reach (the harness also flushes Redis before each window):
# every request pays for checking and settling them, none is refused.
KEY_FIELDS: dict[str, Any] = {
    "name": "bench-governed",
    "team": "bench-team",
    "user": "bench-user",
    "rpm_limit": 1_000_000_000,
    "tpm_limit": 100_000_000_000,
    "budget_usd": 1_000_000.0,
    "budget_window": "day",
    "metadata": {"cost_center": "bench"},
}

# Rules of the kind operators write (docs/policies.md). None matches the benchmark's traffic
# (team bench-team, user bench-user, group "bench", chat completions from 127.0.0.1), so every
# request is judged through the whole list and allowed by the default, the costliest allow.
POLICY_YAML = """\
rules:
  - name: interns-no-premium
    priority: 10
    action: deny
    reason: interns may not use premium models
    match:
      team: [interns, "contractor-*"]
      group: [premium, "gpt-4o*"]
  - name: batch-no-gpt4o
    priority: 20
    action: deny
    reason: batch jobs use the budget models
    match:
      user: ["batch-*"]
      served_model: ["openai/gpt-4o*"]
  - name: office-embeddings
    priority: 25
    action: allow
    match:
      route: ["/embeddings"]
      source_cidr: ["10.0.0.0/8"]
  - name: embeddings-office-only
    priority: 30
    action: deny
    reason: embeddings are served to the office network only
    match:
      route: ["/embeddings"]
"""

PLUGINS_YAML = """\
  plugins:
    - name: pii
      settings: {mode: mask}
    - name: prompt_injection
    - name: cost_tracker
"""


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One RouteIQ configuration: which governance features are on."""

    key: str
    label: str
    redis: bool = False
    policy: bool = False
    plugins: bool = False
    virtual_key: bool = False
    traced: bool = False  # OpenTelemetry tracing on, at TRACE_SAMPLE_RATIO
    limit: float | None = None  # the saturation ratio to the floor it must reach, if it has a target
    wire: str = "openai"  # the bench deployment's wire: "anthropic" serves the Messages passthrough
    dashboards: int = 0  # admin SSE clients kept on /admin/metrics/stream while it is measured


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("routeiq_passthrough", "master key, in-memory state, nothing configured", limit=0.6),
    Scenario("master_redis", "master key, Redis state", redis=True),
    Scenario(
        "master_governed",
        "master key, Redis, policy file, pii + prompt_injection + cost_tracker",
        redis=True,
        policy=True,
        plugins=True,
    ),
    Scenario(
        "vkey_redis",
        "virtual key with rpm/tpm/budget limits, Redis, no plugins",
        redis=True,
        virtual_key=True,
        limit=0.55,
    ),
    Scenario(
        "vkey_governed",
        "virtual key with limits, Redis, policy file, the three plugins",
        redis=True,
        policy=True,
        plugins=True,
        virtual_key=True,
        limit=0.45,
    ),
    Scenario(
        "routeiq_traced", "master key, nothing configured, OpenTelemetry traces sampled at 10%", traced=True
    ),
    Scenario(
        "routeiq_dashboard",
        "master key, nothing configured, 2 SSE clients on /admin/metrics/stream",
        dashboards=2,
        limit=0.6,
    ),
)
BY_KEY = {scenario.key: scenario for scenario in SCENARIOS}
FULLY_GOVERNED = "vkey_governed"  # the configuration scaling, soak RSS and c=1 latency are measured on
# The short labels of the main table (the governed table uses the long ones).
SHORT_LABELS = {
    "master_redis": "RouteIQ master+Redis",
    "master_governed": "RouteIQ master+gov",
    "vkey_redis": "RouteIQ vkey+Redis",
    "vkey_governed": "RouteIQ vkey+gov",
    "routeiq_traced": "RouteIQ traced 10%",
    "routeiq_dashboard": "RouteIQ + 2 SSE",
}
TRACE_SAMPLE_RATIO = "0.1"


def scenario_env(scenario: Scenario, mock_port: int) -> dict[str, str]:
    """The environment a scenario adds: for tracing, the standard OTEL_* variables (the mock takes
    the OTLP exports, so the export's cost is in the figure too)."""
    if not scenario.traced:
        return {}
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{HOST}:{mock_port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": TRACE_SAMPLE_RATIO,
        "OTEL_SERVICE_NAME": "routeiq-bench",
    }


def config_yaml(scenario: Scenario, mock_port: int, redis_url: str) -> str:
    """The scenario's RouteIQ config: the bench deployment (priced), plus what the scenario turns on."""
    lines = [
        "model_list:",
        "  - model_name: bench",
        "    litellm_params:",
        f"      model: {scenario.wire}/bench-model",
        f"      api_base: http://{HOST}:{mock_port}/v1",
        "      api_key: sk-bench",
        "    model_info:",
        f"      input_cost_per_token: {INPUT_COST_PER_TOKEN}",
        f"      output_cost_per_token: {OUTPUT_COST_PER_TOKEN}",
        "router_settings:",
        "  num_retries: 0",
        "routeiq:",
        "  max_concurrent_requests: 10000",
    ]
    if scenario.redis:
        lines += [f"  redis_url: {redis_url}", f"  redis_key_prefix: 'bench-{scenario.key}:'"]
    if scenario.policy:
        lines += ["  policy:", "    file: policy.yaml"]
    text = "\n".join(lines) + "\n"
    return text + PLUGINS_YAML if scenario.plugins else text


def admin_headers() -> dict[str, str]:
    """The control plane's credential (``ROUTEIQ_ADMIN_KEYS`` of every scenario server)."""
    return {"authorization": f"Bearer {ADMIN_KEY}"}


def key_request() -> bytes:
    """The body of ``POST /admin/keys`` for the benchmark's virtual key."""
    return orjson.dumps(KEY_FIELDS)


def issued_secret(status: int | None, body: bytes) -> str:
    """The secret of a freshly created key, or ValueError saying why there is none."""
    if status != 201:
        raise ValueError(f"POST /admin/keys answered {status}: {body[:300]!r}")
    secret = orjson.loads(body).get("key")
    if not isinstance(secret, str) or not secret:
        raise ValueError(f"POST /admin/keys gave no key: {body[:300]!r}")
    return secret


class RedisDb:
    """The benchmark's Redis database: checked once, flushed before every measured window."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Any = None

    async def open(self) -> str | None:
        """Connect and ping; the reason it cannot be used, or None when it can."""
        import redis.asyncio

        self._client = redis.asyncio.Redis.from_url(self.url, socket_timeout=2.0)
        try:
            await self._client.ping()
        except Exception as exc:  # any failure means: no Redis scenarios in this run
            return f"Redis at {self.url} unreachable: {exc}"
        return None

    async def flush(self) -> None:
        """Empty the database (only the benchmark's db: FLUSHDB, never FLUSHALL)."""
        if self._client is not None:
            await self._client.flushdb()

    async def close(self) -> None:
        """Drop the connection pool."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None


async def watch_dashboard(host: str, port: int, events: list[int], index: int) -> None:
    """One admin dashboard: the live metrics stream, read until cancelled; ``events[index]`` counts
    the ``metrics`` events it got (a stream that stalled or broke shows as too few)."""
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"GET /admin/metrics/stream HTTP/1.1\r\nhost: {host}:{port}\r\naccept: text/event-stream\r\n"
        f"authorization: Bearer {ADMIN_KEY}\r\n\r\n"
    )
    writer.write(head.encode())
    try:
        while line := await reader.readline():
            if line.startswith(b"event: metrics"):
                events[index] += 1
    finally:
        writer.close()
