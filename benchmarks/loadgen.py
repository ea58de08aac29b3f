"""A small, fast HTTP/1.1 load generator for the benchmarks (asyncio + httptools, keep-alive).

Why not aiohttp/httpx as the client: the load generator must cost far less per request than the
cheapest server it measures (the mock answers in tens of microseconds), otherwise the numbers
measure the client. Requests are pre-serialised bytes; responses are parsed by httptools in C.
Streaming responses record the time to the first body byte (the first SSE event) and count
``data:`` events, which is what the TTFT and CPU-per-chunk figures are built on.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import gc
import time
from typing import Any, cast

import httptools
import orjson

OVERHEAD_HEADER = b"x-routeiq-overhead-ms"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where requests go; always a loopback host (checked by the harness)."""

    host: str
    port: int
    path: str = "/v1/chat/completions"


def build_request(endpoint: Endpoint, payload: dict[str, Any], headers: dict[str, str]) -> bytes:
    """Serialise one POST once; every request of a run reuses these exact bytes."""
    body = orjson.dumps(payload)
    lines = [
        f"POST {endpoint.path} HTTP/1.1",
        f"host: {endpoint.host}:{endpoint.port}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclasses.dataclass
class Reply:
    """What the client saw of one response."""

    status: int
    first_byte: float
    chunks: int
    overhead_ms: float | None


class ClientConnection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, count_events: bool) -> None:
        self.count_events = count_events
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Reply] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.body: list[bytes] = []
        self.first_byte = 0.0
        self.overhead_ms: float | None = None
        self.closed = False

    # asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport for writes."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        """Parse; a protocol error fails the pending request and drops the connection."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        """A server closing mid-request is an error for that request."""
        self.closed = True
        self._fail(ConnectionError("connection closed by server"))

    # httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        """Reset per-response state."""
        self.body = []
        self.first_byte = 0.0
        self.overhead_ms = None

    def on_header(self, name: bytes, value: bytes) -> None:
        """Pick up RouteIQ's self-reported overhead; other headers are ignored."""
        if name.lower() == OVERHEAD_HEADER:
            try:
                self.overhead_ms = float(value)
            except ValueError:
                self.overhead_ms = None

    def on_body(self, body: bytes) -> None:
        """The first body byte is the first token for a stream."""
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        if self.count_events:
            self.body.append(body)

    def on_message_complete(self) -> None:
        """Resolve the pending request."""
        chunks = 0
        if self.count_events:
            data = b"".join(self.body)
            chunks = data.count(b"data:") - data.count(b"data: [DONE]")
        if not self.parser.should_keep_alive():
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        reply = Reply(self.parser.get_status_code(), self.first_byte, chunks, self.overhead_ms)
        waiter, self.waiter = self.waiter, None
        self._cancel_timer()
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    # client API ----------------------------------------------------------------------------
    def send(self, request: bytes, timeout: float) -> asyncio.Future[Reply]:
        """Write one request; the future fails on timeout or a dropped connection."""
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.timer = loop.call_later(timeout, self._fail, TimeoutError("request timed out"))
        assert self.transport is not None
        self.transport.write(request)
        return self.waiter

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        self._cancel_timer()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
            self.close()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


@dataclasses.dataclass
class LoadResult:
    """Samples of one measured window (warm-up excluded)."""

    window_s: float
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    ttfts_ms: list[float] = dataclasses.field(default_factory=list)
    overheads_ms: list[float] = dataclasses.field(default_factory=list)
    completed: int = 0
    chunks: int = 0
    all_completed: int = 0
    all_chunks: int = 0
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    @property
    def rps(self) -> float:
        """Successful responses per second over the measured window."""
        return self.completed / self.window_s if self.window_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        """Failed requests (non-200 or transport errors), warm-up included."""
        return sum(self.errors.values())


def percentile(values: list[float], pct: float) -> float | None:
    """Linear-interpolated percentile; None for no samples (a target that failed)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def _connect(endpoint: Endpoint, count_events: bool) -> ClientConnection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: ClientConnection(count_events), endpoint.host, endpoint.port
    )
    return conn


@dataclasses.dataclass(frozen=True)
class Window:
    """Time marks of a run: samples count only between ``measure_from`` and ``until``."""

    measure_from: float
    until: float


async def _worker(
    endpoint: Endpoint,
    request: bytes,
    stream: bool,
    window: Window,
    result: LoadResult,
    request_timeout: float,
) -> None:
    """Closed-loop client: send, wait for the full response, repeat until the window ends."""
    conn: ClientConnection | None = None
    try:
        while time.perf_counter() < window.until:
            try:
                if conn is None or conn.closed:
                    conn = await _connect(endpoint, stream)
                started = time.perf_counter()
                reply = await conn.send(request, request_timeout)
            except (OSError, TimeoutError, ConnectionError) as exc:
                result.errors[type(exc).__name__] += 1
                conn = None
                await asyncio.sleep(0.01)  # do not spin against a dead server
                continue
            _record(result, window, started, time.perf_counter(), reply)
    finally:
        if conn is not None:
            conn.close()


def _record(result: LoadResult, window: Window, started: float, ended: float, reply: Reply) -> None:
    """Count a reply if it ended inside the window; latency only if it also started inside.

    ``all_*`` count every success, warm-up included: server CPU is read around the whole run.
    """
    if reply.status != 200:
        result.errors[f"http_{reply.status}"] += 1
        return
    result.all_completed += 1
    result.all_chunks += reply.chunks
    if not window.measure_from <= ended <= window.until:
        return
    result.completed += 1
    result.chunks += reply.chunks
    if started >= window.measure_from:
        result.latencies_ms.append((ended - started) * 1000)
        if reply.first_byte:
            result.ttfts_ms.append((reply.first_byte - started) * 1000)
        if reply.overhead_ms is not None:
            result.overheads_ms.append(reply.overhead_ms)


async def run_load(
    endpoint: Endpoint,
    request: bytes,
    *,
    concurrency: int,
    duration: float,
    warmup: float = 0.0,
    stream: bool = False,
    request_timeout: float = 10.0,
) -> LoadResult:
    """Drive ``concurrency`` closed-loop clients for ``warmup + duration`` seconds.

    The garbage collector is paused for the run so client-side pauses do not show up as server
    tail latency; memory is bounded by the (short) duration.
    """
    start = time.perf_counter()
    window = Window(measure_from=start + warmup, until=start + warmup + duration)
    result = LoadResult(window_s=duration)
    gc.collect()
    gc.disable()
    try:
        workers = [
            _worker(endpoint, request, stream, window, result, request_timeout) for _ in range(concurrency)
        ]
        await asyncio.gather(*workers)
    finally:
        gc.enable()
    return result
