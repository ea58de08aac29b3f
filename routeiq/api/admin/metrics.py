"""Admin: the dashboard's numbers for the whole cluster, once (``GET /admin/metrics``) or live as
Server-Sent Events (``GET /admin/metrics/stream``).

The numbers come from the StateStore (``routeiq.observability.cluster_metrics``), so whichever worker
or replica answers, the counts are the same. The stream holds no slot of the traffic gate (it would
take one from the data plane for as long as a dashboard is open: ``routeiq.middleware.paths``) and
ends as soon as the worker drains; the client then reconnects after the ``retry`` it was given,
to a worker that is still serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import StreamingResponse

from routeiq.api.errors import service_unavailable
from routeiq.api.runtime import runtime_of
from routeiq.resilience.traffic import TrafficGate

if TYPE_CHECKING:  # typing only: the runtime module imports LiteLLM
    from routeiq.runtime import Runtime

logger = logging.getLogger("routeiq.admin")

router = APIRouter(prefix="/admin", tags=["admin"])

RETRY_MILLISECONDS = 3000
TICK_SECONDS = 0.25  # how soon a stream notices the worker draining
STREAM_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}


class Percentiles(BaseModel):
    p50: float | None
    p95: float | None
    p99: float | None


class TokenRates(BaseModel):
    input: float
    output: float


class BreakerState(BaseModel):
    deployment: str
    state: Literal["closed", "open", "half_open"]


class SeriesPoint(BaseModel):
    t: int = Field(description="Bucket start, epoch seconds (10-second buckets).")
    requests: int
    errors: int
    p95_ms: float | None
    cost_usd: float
    input_tokens: int
    output_tokens: int


class MetricsSnapshot(BaseModel):
    """Model requests of every worker and replica: rates, percentiles and distributions over the last
    ``window_seconds``, the series over the last five minutes."""

    generated_at: float = Field(description="Epoch seconds.")
    window_seconds: int
    scope: Literal["cluster", "worker"] = Field(
        description="`worker`: the shared state is unreachable, these are this worker's numbers only."
    )
    requests_total: int = Field(description="Model requests finished in the window.")
    requests_per_second: float
    error_rate: float = Field(description="Share of the window's requests that did not succeed (0..1).")
    errors_by_class: dict[str, int] = Field(description="Error code (or `http_<status>`) -> requests.")
    by_outcome: dict[str, int] = Field(
        description="ok, rejected, failed, shed, interrupted, client_disconnected -> requests."
    )
    latency_ms: Percentiles
    routing_overhead_ms: Percentiles
    tokens_per_minute: TokenRates
    cost_usd_per_minute: float
    by_tier: dict[str, int]
    by_group: dict[str, int]
    by_model: dict[str, int]
    by_strategy: dict[str, int]
    breakers: list[BreakerState]
    queue_depth: int = Field(description="Requests waiting for a slot, summed over the workers.")
    in_flight: int = Field(description="Requests being served, summed over the workers.")
    series: list[SeriesPoint]


async def metrics_payload(runtime: Runtime) -> dict[str, Any]:
    payload = await runtime.cluster_metrics.shared_snapshot()
    breakers = runtime.breakers
    payload["breakers"] = [
        {"deployment": deployment.id, "state": breakers.state(deployment.id) if breakers else "closed"}
        for deployment in runtime.deployments
    ]
    return payload


@router.get("/metrics", response_model=MetricsSnapshot)
async def metrics(request: Request) -> dict[str, Any]:
    """The dashboard's numbers, the same whichever worker answers."""
    return await metrics_payload(runtime_of(request))


@router.get(
    "/metrics/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`retry: 3000`, then `event: metrics` with a MetricsSnapshot as `data` "
            "every `admin.metrics_stream_seconds`, `: heartbeat` comments between.",
            "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/MetricsSnapshot"}}},
        }
    },
)
async def metrics_stream(request: Request) -> StreamingResponse:
    """``GET /admin/metrics`` as Server-Sent Events, until the client leaves or the worker drains."""
    runtime = runtime_of(request)
    gate: TrafficGate = request.app.state.gate
    if gate.draining:
        raise service_unavailable("this gateway instance is shutting down; retry on another", "draining", 1)
    events = metrics_events(runtime, gate, runtime.settings.admin.metrics_stream_seconds)
    return StreamingResponse(events, media_type="text/event-stream", headers=STREAM_HEADERS)


async def metrics_events(runtime: Runtime, gate: TrafficGate, interval: float) -> AsyncIterator[bytes]:
    """The stream's body. It ends when the worker drains; when the client leaves, Starlette cancels
    it at its next await (nothing else is left running)."""
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    next_event = time.monotonic()
    heartbeat_due: float | None = None
    while not gate.draining:
        now = time.monotonic()
        if now >= next_event:
            try:
                payload = await metrics_payload(runtime)
            except Exception as error:  # the stream outlives a bad moment of the store
                logger.debug("metrics stream: snapshot failed", exc_info=True)
                yield f": metrics unavailable ({type(error).__name__})\n\n".encode()
            else:
                data = orjson.dumps(MetricsSnapshot.model_validate(payload).model_dump(mode="json"))
                yield b"event: metrics\ndata: " + data + b"\n\n"
            next_event = now + interval
            heartbeat_due = now + interval / 2
        elif heartbeat_due is not None and now >= heartbeat_due:
            yield b": heartbeat\n\n"
            heartbeat_due = None
        wake = min(next_event, heartbeat_due if heartbeat_due is not None else next_event)
        await asyncio.sleep(min(TICK_SECONDS, max(0.0, wake - time.monotonic())))
