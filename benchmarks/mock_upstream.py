"""A minimal, very fast OpenAI-compatible mock upstream for the gateway benchmarks. It also answers
Anthropic's ``POST /v1/messages`` (whole, or the Messages event stream with as many text deltas as
a chat stream has chunks), for the Anthropic-wire passthrough.

Why raw asyncio + httptools instead of a web framework: the mock shares a core with the load
generator, so every microsecond it spends per request is taken from the measurement. Responses are
pre-serialised once per (model, shape) and written with a single ``transport.write``.

Behaviour is set at start-up (CLI flags) and can be changed at run time with
``POST /_bench/config`` (``{"delay_ms", "chunks", "chunk_delay_ms"}``) so one mock serves every
phase of a benchmark run, whatever gateway sits in front of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import sys
from collections.abc import Callable, Coroutine
from typing import Any, cast

import httptools
import orjson

CREATED = 1_700_000_000
COMPLETION_ID = "chatcmpl-bench"
TOKEN = "tok"


@dataclasses.dataclass
class MockConfig:
    """How the mock answers: a fixed delay before the first byte, and the shape of streams."""

    delay_ms: float = 0.0
    chunks: int = 5
    chunk_delay_ms: float = 0.0

    def update(self, values: dict[str, Any]) -> None:
        """Apply a partial update; unknown keys are rejected so a typo in the harness is loud."""
        unknown = set(values) - {"delay_ms", "chunks", "chunk_delay_ms"}
        if unknown:
            raise ValueError(f"unknown mock config keys: {sorted(unknown)}")
        for key, value in values.items():
            setattr(self, key, int(value) if key == "chunks" else float(value))
        self.chunks = max(1, self.chunks)


@dataclasses.dataclass
class MockState:
    """Configuration, a request counter and the response cache, shared by every connection."""

    config: MockConfig = dataclasses.field(default_factory=MockConfig)
    completions: int = 0
    _json_cache: dict[str, bytes] = dataclasses.field(default_factory=dict)
    _stream_cache: dict[tuple[str, bool], list[bytes]] = dataclasses.field(default_factory=dict)
    _message_cache: dict[tuple[str, bool], bytes | list[bytes]] = dataclasses.field(default_factory=dict)

    def reconfigure(self, values: dict[str, Any]) -> None:
        """Change behaviour and drop cached bodies that were built for the old shape."""
        self.config.update(values)
        self._stream_cache.clear()
        self._message_cache.clear()

    def completion_response(self, model: str) -> bytes:
        """A complete non-streaming HTTP response (head + body), built once per model."""
        cached = self._json_cache.get(model)
        if cached is None:
            cached = http_response(200, orjson.dumps(completion_body(model)))
            self._json_cache[model] = cached
        return cached

    def stream_frames(self, model: str, include_usage: bool) -> list[bytes]:
        """The chunked-encoding frames of one SSE stream: head, N chunks, [usage], [DONE], end."""
        key = (model, include_usage)
        cached = self._stream_cache.get(key)
        if cached is None:
            cached = build_stream_frames(model, self.config.chunks, include_usage)
            self._stream_cache[key] = cached
        return cached

    def message_response(self, model: str) -> bytes:
        """A whole Anthropic message, as a complete HTTP response, built once per model."""
        cached = self._message_cache.get((model, False))
        if not isinstance(cached, bytes):
            cached = http_response(200, orjson.dumps(message_body(model)))
            self._message_cache[(model, False)] = cached
        return cached

    def message_stream_frames(self, model: str) -> list[bytes]:
        """The frames of one Messages event stream (same layout as ``stream_frames``)."""
        cached = self._message_cache.get((model, True))
        if not isinstance(cached, list):
            cached = build_message_stream_frames(model, self.config.chunks)
            self._message_cache[(model, True)] = cached
        return cached


def message_body(model: str) -> dict[str, Any]:
    """An Anthropic ``message`` the anthropic SDK accepts."""
    return {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello from the bench mock."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 6},
    }


def anthropic_event(name: str, obj: dict[str, Any]) -> bytes:
    """One SSE event as Anthropic sends it: ``event: <name>\\ndata: {json}\\n\\n``."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


def build_message_stream_frames(model: str, chunks: int) -> list[bytes]:
    """Head; message_start, the text block's start and first delta; a delta per further chunk;
    the block's stop, message_delta (the usage) and message_stop with the end of the body."""
    start = {
        **message_body(model),
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 9, "output_tokens": 1},
    }

    def delta(index: int) -> bytes:
        text = TOKEN if index == 0 else " " + TOKEN
        data = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        return anthropic_event("content_block_delta", data)

    opening = anthropic_event("message_start", {"type": "message_start", "message": start})
    opening += anthropic_event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    frames = [STREAM_HEAD, chunked_frame(opening + delta(0))]
    frames += [chunked_frame(delta(index)) for index in range(1, chunks)]
    tail = anthropic_event("content_block_stop", {"type": "content_block_stop", "index": 0})
    tail += anthropic_event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"input_tokens": 9, "output_tokens": chunks},
        },
    )
    tail += anthropic_event("message_stop", {"type": "message_stop"})
    frames.append(chunked_frame(tail) + b"0\r\n\r\n")
    return frames


def completion_body(model: str) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object that strict clients (openai SDK, LiteLLM) accept."""
    return {
        "id": COMPLETION_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the bench mock."},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
    }


def chunk_body(model: str, index: int, last: bool) -> dict[str, Any]:
    """One ``chat.completion.chunk``; the first carries the role, the last the finish reason."""
    delta: dict[str, Any] = {"content": TOKEN if index == 0 else " " + TOKEN}
    if index == 0:
        delta["role"] = "assistant"
    return {
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if last else None}],
    }


def usage_chunk_body(model: str, chunks: int) -> dict[str, Any]:
    """The trailing usage chunk OpenAI sends when ``stream_options.include_usage`` is set."""
    return {
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": chunks, "total_tokens": 9 + chunks},
    }


def chunked_frame(payload: bytes) -> bytes:
    """Frame bytes for ``Transfer-Encoding: chunked`` so streams keep the connection alive."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def sse_event(obj: dict[str, Any]) -> bytes:
    """One SSE event as OpenAI sends it: ``data: {json}\\n\\n``."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def build_stream_frames(model: str, chunks: int, include_usage: bool) -> list[bytes]:
    """Pre-serialise a whole stream; frame 0 is the HTTP head, the last frame ends the body."""
    frames = [STREAM_HEAD]
    for index in range(chunks):
        frames.append(chunked_frame(sse_event(chunk_body(model, index, index == chunks - 1))))
    tail = b""
    if include_usage:
        tail += sse_event(usage_chunk_body(model, chunks))
    tail += b"data: [DONE]\n\n"
    frames.append(chunked_frame(tail) + b"0\r\n\r\n")
    return frames


REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}


def http_response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    """A complete HTTP/1.1 response with a content-length (keep-alive friendly)."""
    reason = REASONS.get(status, b"Status")
    return b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        reason,
        content_type,
        len(body),
        body,
    )


def error_response(status: int, message: str) -> bytes:
    """An OpenAI-shaped error so a misrouted benchmark request fails loudly in the client."""
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return http_response(status, orjson.dumps(body))


MODELS_BODY = orjson.dumps({"object": "list", "data": [{"id": "bench-model", "object": "model"}]})
CHAT_PATHS = {b"/v1/chat/completions", b"/chat/completions"}
MESSAGES_PATHS = {b"/v1/messages", b"/messages"}
# An OpenAI moderations answer that flags nothing: the moderation guardrail's cost is measured on it.
MODERATION_RESPONSE = http_response(
    200,
    orjson.dumps(
        {
            "id": "modr-bench",
            "model": "omni-moderation-latest",
            "results": [{"flagged": False, "categories": {}, "category_scores": {}}],
        }
    ),
)


class MockProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection; requests are answered in order, delayed ones from a task."""

    def __init__(self, state: MockState) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport; Nagle is off by default on loopback sockets made by asyncio."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        """Cancel a half-written delayed response so its task does not write to a dead socket."""
        if self.task is not None:
            self.task.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        """Feed the parser; malformed input closes the connection (the client is broken)."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(error_response(400, "malformed HTTP request"), close=True)

    # httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        """Reset per-request buffers (connections are kept alive)."""
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        """Accumulate the URL (it may arrive in pieces)."""
        self.url += url

    def on_body(self, body: bytes) -> None:
        """Accumulate the body (it may arrive in pieces)."""
        self.body.append(body)

    def on_message_complete(self) -> None:
        """Dispatch a complete request."""
        close = not self.parser.should_keep_alive()
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        body = b"".join(self.body)
        if method == b"POST" and path in CHAT_PATHS:
            self._chat(body, close)
        elif method == b"POST" and path in MESSAGES_PATHS:
            self._messages(body, close)
        elif method == b"GET":
            self._write(self._get(path), close)
        elif method == b"POST" and path == b"/v1/moderations":
            self._write(MODERATION_RESPONSE, close)
        elif method == b"POST" and path == b"/v1/traces":  # OTLP/HTTP: the traced scenario's exports
            self._write(http_response(200, b"", b"application/x-protobuf"), close)
        elif method == b"POST" and path == b"/_bench/config":
            self._write(self._configure(body), close)
        else:
            self._write(error_response(404, f"no route {method!r} {path!r}"), close)

    # handlers -----------------------------------------------------------------------------
    def _get(self, path: bytes) -> bytes:
        """Health, stats and model list; anything else is a 404."""
        if path in {b"/_health/ready", b"/_health/live", b"/health"}:
            return http_response(200, b'{"status":"ok"}')
        if path == b"/_bench/stats":
            return http_response(200, orjson.dumps({"completions": self.state.completions}))
        if path in {b"/v1/models", b"/models"}:
            return http_response(200, MODELS_BODY)
        return error_response(404, f"no route GET {path!r}")

    def _configure(self, body: bytes) -> bytes:
        """Run-time reconfiguration used by the harness between measurement phases."""
        try:
            self.state.reconfigure(orjson.loads(body or b"{}"))
        except (ValueError, TypeError) as exc:
            return error_response(400, str(exc))
        return http_response(200, orjson.dumps(dataclasses.asdict(self.state.config)))

    def _chat(self, body: bytes, close: bool) -> None:
        """Answer a chat completion, streamed or not, immediately or after the configured delays."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._write(error_response(400, "body is not JSON"), close)
            return
        self.state.completions += 1
        model = str(request.get("model", "bench-model"))
        config = self.state.config
        if request.get("stream"):
            options = request.get("stream_options") or {}
            self._stream(self.state.stream_frames(model, bool(options.get("include_usage"))), close)
            return
        response = self.state.completion_response(model)
        if config.delay_ms <= 0:
            self._write(response, close)
        else:
            self._later(self._send_after(response, config.delay_ms, close))

    def _messages(self, body: bytes, close: bool) -> None:
        """Answer an Anthropic Messages call, streamed or not, like a chat completion."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._write(error_response(400, "body is not JSON"), close)
            return
        self.state.completions += 1
        model = str(request.get("model", "bench-model"))
        if request.get("stream"):
            self._stream(self.state.message_stream_frames(model), close)
            return
        response = self.state.message_response(model)
        if self.state.config.delay_ms <= 0:
            self._write(response, close)
        else:
            self._later(self._send_after(response, self.state.config.delay_ms, close))

    def _stream(self, frames: list[bytes], close: bool) -> None:
        """Head + first chunk at once (unless delayed), the rest paced by ``chunk_delay_ms``.

        Writing the first chunk synchronously keeps the mock's own time to first token equal to
        its non-streaming latency, so TTFT overheads measure the gateway and nothing else.
        """
        config = self.state.config
        if config.delay_ms > 0:
            self._later(self._stream_after(frames, config.delay_ms, config.chunk_delay_ms, close))
        elif config.chunk_delay_ms > 0:
            self._write(frames[0] + frames[1], False)
            self._later(self._pace(frames[2:], config.chunk_delay_ms, close))
        else:
            self._write(b"".join(frames), close)

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a delayed response; reading pauses so pipelined requests cannot overtake it."""
        if self.transport is not None:
            self.transport.pause_reading()
        self.task = asyncio.get_running_loop().create_task(coro)
        self.task.add_done_callback(self._resume)

    def _resume(self, _task: asyncio.Task[None]) -> None:
        """Resume reading once a delayed response is fully written."""
        self.task = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    async def _send_after(self, response: bytes, delay_ms: float, close: bool) -> None:
        """Fixed upstream latency (simulates a model's time to answer)."""
        await asyncio.sleep(delay_ms / 1000)
        self._write(response, close)

    async def _stream_after(self, frames: list[bytes], delay_ms: float, gap_ms: float, close: bool) -> None:
        """Head + first chunk after ``delay_ms`` (time to first token), then the paced rest."""
        await asyncio.sleep(delay_ms / 1000)
        self._write(frames[0] + frames[1], False)
        await self._pace(frames[2:], gap_ms, close)

    async def _pace(self, frames: list[bytes], gap_ms: float, close: bool) -> None:
        """One chunk every ``gap_ms`` (token pacing); the closing frame follows the last chunk."""
        for frame in frames[:-1]:
            await asyncio.sleep(gap_ms / 1000)
            self._write(frame, False)
        self._write(frames[-1], close)

    def _write(self, data: bytes, close: bool) -> None:
        """Write unless the client went away; close when the client asked for it."""
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if close:
            self.transport.close()


def install_fast_loop() -> None:
    """Use uvloop when present: it roughly halves the mock's per-request CPU."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def require_loopback(host: str) -> None:
    """Benchmarks only ever listen and send on loopback addresses."""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"refusing non-loopback host {host!r}")


async def serve(host: str, port: int, config: MockConfig, on_ready: Callable[[], None] | None = None) -> None:
    """Serve until cancelled."""
    state = MockState(config=config)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: MockProtocol(state), host, port, backlog=4096)
    if on_ready is not None:
        on_ready()
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: ``python -m benchmarks.mock_upstream --port 9000``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay before the first byte")
    parser.add_argument("--chunks", type=int, default=5, help="content chunks per streamed response")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="gap between streamed chunks")
    args = parser.parse_args(argv)
    require_loopback(args.host)
    config = MockConfig(
        delay_ms=args.delay_ms, chunks=max(1, args.chunks), chunk_delay_ms=args.chunk_delay_ms
    )
    install_fast_loop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(args.host, args.port, config, lambda: print("mock ready", flush=True, file=sys.stderr))
        )


if __name__ == "__main__":
    main()
