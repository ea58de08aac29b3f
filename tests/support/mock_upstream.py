"""A fake OpenAI-compatible LLM provider for RouteIQ's end-to-end tests.

Why it exists: the gateway's e2e tests need an upstream that speaks the OpenAI wire format
(including SSE streaming, tool calls, usage chunks and base64 embeddings) and that can be made
to misbehave on demand -- fail, rate-limit, stall, or drop a stream half way -- without any
network access or real provider keys.

Behaviour is selected from the *requested model name*, so a gateway config can map deployments
to behaviours statically (e.g. a deployment whose upstream model is ``gpt-fail500``). Tokens
understood anywhere in the model name (substring match, several may be combined):

* ``fail500`` / ``fail429`` / ``fail400`` -- answer with that status and an OpenAI error body
  (429 also carries ``retry-after: 1``).
* ``slow<N>ms`` -- sleep N ms before answering (before the headers / first chunk when streaming).
* ``chunkdelay<N>ms`` -- sleep N ms between streamed chunks.
* ``midstream`` -- when streaming, send two chunks and then close the connection without
  ``[DONE]``.
* ``hang`` -- never answer (sleeps one hour; cancelled when the client disconnects).
* ``badjson`` -- answer 200 with a body that is not JSON (when streaming: an event whose data is
  not JSON, then ``[DONE]``).
* ``lateerror`` -- when streaming, send two chunks, then a ``data: {"error": ...}`` event and end
  the stream (no ``[DONE]``).
* ``error200`` -- answer 200 with an OpenAI error body ``{"error": {...}}`` (when streaming: one
  ``data: {"error": ...}`` event and the end of the stream).
* ``toolargs`` -- a tool call's arguments fill each property of the tool's parameter schema with
  ``"mock-<property>"`` (streamed three characters at a time) instead of ``{}``.
* ``reasoner`` -- answer chat like a reasoning model: the message carries ``reasoning_content``
  (``"mock reasoning at effort <reasoning_effort>"``, naming the request's effort or ``None``),
  streamed as ``delta.reasoning_content`` pieces before the content.
* ``llamaguard`` -- answer chat like a LlamaGuard model: ``unsafe\nS1`` when the last user message
  contains ``MODERATION_MARKER``, else ``safe``.
* ``scripted`` -- answer chat with the text of the marker ``[[<model>:<text>]]`` (``<model>`` the
  requested model name) when the last user message holds one, so a test scripts each model's answer.

A chat request with ``logprobs: true`` gets token log-probabilities for its content: each piece's is
the number in a ``[[logprob:<x>]]`` marker of the last user message, else -0.01.

``POST /v1/messages`` (and ``/v1/messages/count_tokens``) answer as Anthropic does, for
Anthropic-wire deployments: see ``tests.support.mock_anthropic``. ``POST /v1/responses`` answers as OpenAI's
native Responses API does: see ``tests.support.mock_responses``.

``POST /v1/moderations`` answers OpenAI-style, flagging (category ``violence``) every input that
contains ``MODERATION_MARKER``.

Tests may override the behaviour of an exact model name at runtime with
:meth:`MockUpstream.set_behaviour` or ``POST /_control/behaviour``; every API request is recorded
and readable through :attr:`MockUpstream.requests` or ``GET /_control/requests``.

Run standalone with ``python -m tests.support.mock_upstream --port P``; it prints ``READY <port>``
once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import math
import re
import secrets
import signal
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypedDict

import orjson
from aiohttp import web

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_EMBEDDING_DIM = 8
DEFAULT_MODELS = ("mock-gpt", "mock-embed")
CONTROL_PREFIX = "/_control/"
HANG_SECONDS = 3600.0
SHUTDOWN_TIMEOUT_S = 0.5
FINGERPRINT = "fp_mock"

MODERATION_MARKER = "forbidden-fruit"
_SLOW_RE = re.compile(r"slow(\d+)ms")
_CHUNK_DELAY_RE = re.compile(r"chunkdelay(\d+)ms")
_FAIL_STATUSES = (500, 429, 400)


# --------------------------------------------------------------------------------------------
# Behaviour
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    """What the mock should do for one request, parsed from a model name or override string."""

    fail_status: int | None = None
    slow_ms: int = 0
    chunk_delay_ms: int = 0
    midstream: bool = False
    hang: bool = False
    bad_json: bool = False
    error_200: bool = False
    late_error: bool = False
    tool_args: bool = False
    reasoning: bool = False

    @classmethod
    def parse(cls, spec: str) -> Behaviour:
        fail = next((status for status in _FAIL_STATUSES if f"fail{status}" in spec), None)
        return cls(
            fail_status=fail,
            slow_ms=_int_match(_SLOW_RE, spec),
            chunk_delay_ms=_int_match(_CHUNK_DELAY_RE, spec),
            midstream="midstream" in spec,
            hang="hang" in spec,
            bad_json="badjson" in spec,
            error_200="error200" in spec,
            late_error="lateerror" in spec,
            tool_args="toolargs" in spec,
            reasoning="reasoner" in spec,
        )


def _int_match(pattern: re.Pattern[str], text: str) -> int:
    match = pattern.search(text)
    return int(match.group(1)) if match else 0


# --------------------------------------------------------------------------------------------
# Shared state (lives on the aiohttp app; touched from the server thread and the test thread)
# --------------------------------------------------------------------------------------------


class RecordedRequest(TypedDict):
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class MockState:
    """Configuration plus the mutable, lock-protected state of one mock server."""

    embedding_dim: int = DEFAULT_EMBEDDING_DIM
    required_api_key: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _overrides: dict[str, str] = field(default_factory=dict)
    _requests: list[RecordedRequest] = field(default_factory=list)

    def set_behaviour(self, model: str, behaviour: str | None) -> None:
        with self._lock:
            if behaviour is None:
                self._overrides.pop(model, None)
            else:
                self._overrides[model] = behaviour

    def behaviour_for(self, model: str) -> Behaviour:
        with self._lock:
            spec = self._overrides.get(model, model)
        return Behaviour.parse(spec)

    def record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(entry)

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [RecordedRequest(**entry) for entry in self._requests]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._overrides.clear()


STATE_KEY = web.AppKey("mock_state", MockState)


def _state(request: web.Request) -> MockState:
    return request.app[STATE_KEY]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def _json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers
    )


def _error_response(
    status: int, message: str, err_type: str, code: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    return _json_response(body, status=status, headers=headers)


def _failure_response(status: int, model: str) -> web.Response:
    if status == 429:
        return _error_response(
            429,
            f"Rate limit reached for {model} (mock).",
            "requests",
            "rate_limit_exceeded",
            headers={"retry-after": "1"},
        )
    if status == 400:
        return _error_response(400, f"Invalid request for {model} (mock).", "invalid_request_error")
    return _error_response(
        500, "The server had an error while processing your request (mock).", "server_error"
    )


def _count_tokens(text: str) -> int:
    return len(text.split())


def _usage(prompt_tokens: int, completion_tokens: int) -> JSON:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _content_text(content: Any) -> str:
    """Flatten a message ``content`` (string or list of parts) into plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _reply_text(model: str, prompt: str) -> str:
    if "scripted" in model:
        scripted = re.search(rf"\[\[{re.escape(model)}:(.*?)\]\]", prompt, re.DOTALL)
        if scripted:
            return scripted.group(1)
    if "llamaguard" in model:
        return "unsafe\nS1" if MODERATION_MARKER in prompt else "safe"
    return f"mock reply from {model}: {prompt[:40]}"


def _split_pieces(text: str) -> list[str]:
    """Split text into word-ish pieces that concatenate back to the original."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def _wants_usage_chunk(body: JSON) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def _choice_count(body: JSON) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


# --------------------------------------------------------------------------------------------
# Middleware: recording, auth, body parsing
# --------------------------------------------------------------------------------------------


async def _parse_body(request: web.Request) -> Any:
    if not request.body_exists:
        return None
    raw = await request.read()
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def _is_authorised(request: web.Request, required_key: str | None) -> bool:
    return required_key is None or request.headers.get("Authorization") == f"Bearer {required_key}"


@web.middleware
async def _record_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(CONTROL_PREFIX):
        return await handler(request)
    state = _state(request)
    state.record(
        RecordedRequest(
            method=request.method,
            path=request.path,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=await _parse_body(request),
        )
    )
    if not _is_authorised(request, state.required_api_key):
        return _error_response(
            401, "Incorrect API key provided (mock).", "invalid_request_error", "invalid_api_key"
        )
    return await handler(request)


async def _json_object_body(request: web.Request) -> JSON | None:
    body = await _parse_body(request)
    return body if isinstance(body, dict) else None


def _bad_request(message: str) -> web.Response:
    return _error_response(400, message, "invalid_request_error")


async def _apply_pre_answer_behaviour(behaviour: Behaviour, model: str) -> web.Response | None:
    """Sleep / hang / fail as requested; returns an error response if the request must fail."""
    if behaviour.hang:
        await asyncio.sleep(HANG_SECONDS)
    if behaviour.slow_ms:
        await asyncio.sleep(behaviour.slow_ms / 1000)
    if behaviour.fail_status is not None:
        return _failure_response(behaviour.fail_status, model)
    return None


def _broken_success(behaviour: Behaviour, streaming: bool) -> web.Response | None:
    """A 200 that is not an answer (``badjson`` / ``error200``), or None."""
    if behaviour.bad_json:
        if streaming:
            return web.Response(
                body=b"data: {this is not json\n\ndata: [DONE]\n\n", content_type="text/event-stream"
            )
        return web.Response(body=b"{this is not json", content_type="application/json")
    if behaviour.error_200:
        error = {
            "error": {
                "message": "Upstream overloaded (mock).",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
        if streaming:
            return web.Response(
                body=b"data: " + orjson.dumps(error) + b"\n\n", content_type="text/event-stream"
            )
        return _json_response(error)
    return None


# --------------------------------------------------------------------------------------------
# SSE streaming
# --------------------------------------------------------------------------------------------


async def _stream_sse(
    request: web.Request, chunks: Sequence[JSON], behaviour: Behaviour
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    for index, chunk in enumerate(chunks):
        if index and behaviour.chunk_delay_ms:
            await asyncio.sleep(behaviour.chunk_delay_ms / 1000)
        if behaviour.midstream and index == 2:
            _abort_connection(request)
            return response
        if behaviour.late_error and index == 2:
            error = {"error": {"message": "Upstream failed mid-answer (mock).", "type": "server_error"}}
            await response.write(b"data: " + orjson.dumps(error) + b"\n\n")
            await response.write_eof()
            return response
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def _abort_connection(request: web.Request) -> None:
    """Close the socket mid-response so the client sees a truncated chunked body."""
    transport = request.transport
    if transport is not None:
        transport.close()


# --------------------------------------------------------------------------------------------
# Chat completions
# --------------------------------------------------------------------------------------------


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _prompt_tokens_for_messages(messages: Any) -> int:
    if not isinstance(messages, list):
        return 0
    return sum(_count_tokens(_content_text(m.get("content"))) for m in messages if isinstance(m, dict))


def _selected_tool(body: JSON) -> str | None:
    """Name of the function to call, or None when the model should answer with text."""
    tools = body.get("tools")
    tool_choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict):
        named = (tool_choice.get("function") or {}).get("name")
        if named:
            return str(named)
    first = tools[0] if isinstance(tools[0], dict) else {}
    return str((first.get("function") or {}).get("name", "tool"))


def _tool_arguments(body: JSON, tool_name: str | None) -> str:
    """``{"<property>": "mock-<property>", ...}`` for the called tool's parameter schema."""
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("name") == tool_name:
            properties = (function.get("parameters") or {}).get("properties") or {}
            return orjson.dumps({name: f"mock-{name}" for name in properties}).decode()
    return "{}"


@dataclass(frozen=True)
class ChatPlan:
    """Everything needed to render a chat answer, streamed or not."""

    completion_id: str
    created: int
    model: str
    n: int
    content: str
    tool_name: str | None
    usage: JSON
    arguments: str = "{}"
    reasoning: str | None = None
    logprobs: JSON | None = None

    @classmethod
    def from_body(cls, body: JSON, model: str, behaviour: Behaviour | None = None) -> ChatPlan:
        messages = body.get("messages")
        content = _reply_text(model, _last_user_text(messages))
        tool_name = _selected_tool(body)
        arguments = _tool_arguments(body, tool_name) if behaviour and behaviour.tool_args else "{}"
        completion_tokens = 1 if tool_name else _count_tokens(content)
        reasoning = None
        if behaviour and behaviour.reasoning:
            reasoning = f"mock reasoning at effort {body.get('reasoning_effort')}"
            completion_tokens += _count_tokens(reasoning)
        n = _choice_count(body)
        logprobs = None
        if body.get("logprobs") is True and tool_name is None:
            marker = re.search(r"\[\[logprob:(-?[\d.]+)\]\]", _last_user_text(messages))
            value = float(marker.group(1)) if marker else -0.01
            pieces = _split_pieces(content)
            logprobs = {
                "content": [{"token": p, "logprob": value, "bytes": None, "top_logprobs": []} for p in pieces]
            }
        return cls(
            completion_id=_new_id("chatcmpl-"),
            created=int(time.time()),
            model=model,
            n=n,
            content=content,
            tool_name=tool_name,
            usage=_usage(_prompt_tokens_for_messages(messages), completion_tokens * n),
            arguments=arguments,
            reasoning=reasoning,
            logprobs=logprobs,
        )

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_name else "stop"


def _chat_message(plan: ChatPlan) -> JSON:
    if plan.tool_name is None and plan.reasoning is not None:
        return {
            "role": "assistant",
            "content": plan.content,
            "refusal": None,
            "reasoning_content": plan.reasoning,
        }
    if plan.tool_name is None:
        return {"role": "assistant", "content": plan.content, "refusal": None}
    tool_call = {
        "id": _new_id("call_"),
        "type": "function",
        "function": {"name": plan.tool_name, "arguments": plan.arguments},
    }
    return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [tool_call]}


def _chat_completion(plan: ChatPlan) -> JSON:
    choices = [
        {
            "index": i,
            "message": _chat_message(plan),
            "logprobs": plan.logprobs,
            "finish_reason": plan.finish_reason,
        }
        for i in range(plan.n)
    ]
    return {
        "id": plan.completion_id,
        "object": "chat.completion",
        "created": plan.created,
        "model": plan.model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        "usage": plan.usage,
    }


def _chat_deltas(plan: ChatPlan) -> list[tuple[JSON, str | None]]:
    """The (delta, finish_reason) sequence for one streamed choice, OpenAI style."""
    if plan.tool_name is None:
        deltas: list[tuple[JSON, str | None]] = [
            ({"role": "assistant", "content": "", "refusal": None}, None)
        ]
        if plan.reasoning is not None:
            deltas += [({"reasoning_content": piece}, None) for piece in _split_pieces(plan.reasoning)]
        deltas += [({"content": piece}, None) for piece in _split_pieces(plan.content)]
    else:
        header = {
            "index": 0,
            "id": _new_id("call_"),
            "type": "function",
            "function": {"name": plan.tool_name, "arguments": ""},
        }
        deltas = [({"role": "assistant", "content": None, "tool_calls": [header]}, None)]
        deltas += [
            ({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}, None)
            for part in _argument_pieces(plan.arguments)
        ]
    deltas.append(({}, plan.finish_reason))
    return deltas


def _argument_pieces(arguments: str) -> list[str]:
    if arguments == "{}":
        return ["{", "}"]
    return [arguments[start : start + 3] for start in range(0, len(arguments), 3)]


def _chat_chunk(plan: ChatPlan, choices: list[JSON], with_usage_field: bool) -> JSON:
    chunk: JSON = {
        "id": plan.completion_id,
        "object": "chat.completion.chunk",
        "created": plan.created,
        "model": plan.model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
    }
    if with_usage_field:
        chunk["usage"] = None
    return chunk


def _chat_chunks(plan: ChatPlan, include_usage: bool) -> list[JSON]:
    chunks = [
        _chat_chunk(
            plan,
            [{"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}],
            include_usage,
        )
        for delta, finish in _chat_deltas(plan)
        for i in range(plan.n)
    ]
    if include_usage:
        final = _chat_chunk(plan, [], include_usage)
        final["usage"] = plan.usage
        chunks.append(final)
    return chunks


async def _handle_chat(request: web.Request) -> web.StreamResponse:
    body = await _json_object_body(request)
    if body is None:
        return _bad_request("Request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _bad_request("You must provide a model parameter.")
    behaviour = _state(request).behaviour_for(model)
    failure = await _apply_pre_answer_behaviour(behaviour, model)
    if failure is None:
        failure = _broken_success(behaviour, bool(body.get("stream")))
    if failure is not None:
        return failure
    plan = ChatPlan.from_body(body, model, behaviour)
    if body.get("stream"):
        return await _stream_sse(request, _chat_chunks(plan, _wants_usage_chunk(body)), behaviour)
    return _json_response(_chat_completion(plan))


# --------------------------------------------------------------------------------------------
# Legacy text completions
# --------------------------------------------------------------------------------------------


def _prompt_texts(prompt: Any) -> list[str]:
    """Normalise ``prompt`` (str, list of str, token list, list of token lists) to texts."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
        return [" ".join(map(str, prompt))]
    if isinstance(prompt, list) and prompt:
        return [p if isinstance(p, str) else " ".join(map(str, p)) for p in prompt]
    return [""]


@dataclass(frozen=True)
class CompletionPlan:
    completion_id: str
    created: int
    model: str
    texts: list[str]
    usage: JSON

    @classmethod
    def from_body(cls, body: JSON, model: str) -> CompletionPlan:
        prompts = _prompt_texts(body.get("prompt"))
        n = _choice_count(body)
        texts = [_reply_text(model, prompt) for prompt in prompts for _ in range(n)]
        prompt_tokens = sum(_count_tokens(p) for p in prompts)
        return cls(
            completion_id=_new_id("cmpl-"),
            created=int(time.time()),
            model=model,
            texts=texts,
            usage=_usage(prompt_tokens, sum(_count_tokens(t) for t in texts)),
        )

    def envelope(self, choices: list[JSON]) -> JSON:
        return {
            "id": self.completion_id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }


def _text_choice(index: int, text: str, finish_reason: str | None) -> JSON:
    return {"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}


def _text_completion(plan: CompletionPlan) -> JSON:
    payload = plan.envelope([_text_choice(i, text, "stop") for i, text in enumerate(plan.texts)])
    payload["usage"] = plan.usage
    return payload


def _text_completion_chunks(plan: CompletionPlan, include_usage: bool) -> list[JSON]:
    chunks: list[JSON] = []
    for index, text in enumerate(plan.texts):
        pieces = [(piece, None) for piece in _split_pieces(text)] + [("", "stop")]
        chunks += [plan.envelope([_text_choice(index, piece, finish)]) for piece, finish in pieces]
    if include_usage:
        for chunk in chunks:
            chunk["usage"] = None
        final = plan.envelope([])
        final["usage"] = plan.usage
        chunks.append(final)
    return chunks


async def _handle_completions(request: web.Request) -> web.StreamResponse:
    body = await _json_object_body(request)
    if body is None:
        return _bad_request("Request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _bad_request("You must provide a model parameter.")
    behaviour = _state(request).behaviour_for(model)
    failure = await _apply_pre_answer_behaviour(behaviour, model)
    if failure is None:
        failure = _broken_success(behaviour, bool(body.get("stream")))
    if failure is not None:
        return failure
    plan = CompletionPlan.from_body(body, model)
    if body.get("stream"):
        return await _stream_sse(request, _text_completion_chunks(plan, _wants_usage_chunk(body)), behaviour)
    return _json_response(_text_completion(plan))


# --------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------


def embedding_vector(text: str, dim: int) -> list[float]:
    """Deterministic unit vector derived from ``text``; values are exactly float32-representable."""
    raw = b""
    block = 0
    while len(raw) < dim * 4:
        raw += hashlib.sha256(f"{block}:{text}".encode()).digest()
        block += 1
    ints = struct.unpack(f"<{dim}I", raw[: dim * 4])
    values = [(value / 0xFFFFFFFF) * 2.0 - 1.0 for value in ints]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return _as_float32([v / norm for v in values])


def _as_float32(values: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def _encode_embedding(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


def _embedding_inputs(value: Any) -> list[str]:
    """Normalise ``input`` (str, list of str, token list, list of token lists) to texts."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [" ".join(map(str, value))]
    if isinstance(value, list):
        return [v if isinstance(v, str) else " ".join(map(str, v)) for v in value]
    return []


def _embedding_dim(body: JSON, default: int) -> int:
    dimensions = body.get("dimensions")
    return dimensions if isinstance(dimensions, int) and dimensions > 0 else default


async def _handle_embeddings(request: web.Request) -> web.StreamResponse:
    body = await _json_object_body(request)
    if body is None:
        return _bad_request("Request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _bad_request("You must provide a model parameter.")
    behaviour = _state(request).behaviour_for(model)
    failure = await _apply_pre_answer_behaviour(behaviour, model)
    if failure is None:
        failure = _broken_success(behaviour, False)
    if failure is not None:
        return failure
    texts = _embedding_inputs(body.get("input"))
    if not texts:
        return _bad_request("'input' must be a non-empty string or array.")
    encoding_format = body.get("encoding_format") or "float"
    if encoding_format not in ("float", "base64"):
        return _bad_request(f"Invalid encoding_format: {encoding_format!r}.")
    dim = _embedding_dim(body, _state(request).embedding_dim)
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": _encode_embedding(embedding_vector(t, dim), encoding_format),
        }
        for i, t in enumerate(texts)
    ]
    tokens = sum(_count_tokens(t) for t in texts)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return _json_response({"object": "list", "data": data, "model": model, "usage": usage})


# --------------------------------------------------------------------------------------------
# Models and control endpoints
# --------------------------------------------------------------------------------------------


async def _handle_moderations(request: web.Request) -> web.StreamResponse:
    body = await _json_object_body(request)
    inputs = _embedding_inputs(body.get("input")) if body else []
    if not inputs:
        return _bad_request("'input' must be a non-empty string or array.")
    results = []
    for text in inputs:
        flagged = MODERATION_MARKER in text
        results.append(
            {
                "flagged": flagged,
                "categories": {"violence": flagged, "harassment": False},
                "category_scores": {"violence": 0.99 if flagged else 0.01, "harassment": 0.01},
            }
        )
    model = (body or {}).get("model") or "omni-moderation-mock"
    return _json_response({"id": _new_id("modr-"), "model": model, "results": results})


async def _handle_models(request: web.Request) -> web.StreamResponse:
    data = [
        {"id": model, "object": "model", "created": 1700000000, "owned_by": "mock-upstream"}
        for model in _state(request).models
    ]
    return _json_response({"object": "list", "data": data})


async def _handle_set_behaviour(request: web.Request) -> web.StreamResponse:
    body = await _json_object_body(request)
    model = body.get("model") if body else None
    behaviour = body.get("behaviour") if body else None
    if not isinstance(model, str) or not (behaviour is None or isinstance(behaviour, str)):
        return _bad_request("Expected {'model': str, 'behaviour': str | null}.")
    _state(request).set_behaviour(model, behaviour)
    return _json_response({"ok": True})


async def _handle_get_requests(request: web.Request) -> web.StreamResponse:
    return _json_response(_state(request).requests())


async def _handle_clear(request: web.Request) -> web.StreamResponse:
    _state(request).clear()
    return _json_response({"ok": True})


async def _handle_reset(request: web.Request) -> web.StreamResponse:
    _state(request).reset()
    return _json_response({"ok": True})


def _api_routes() -> Iterable[web.RouteDef]:
    endpoints: list[tuple[str, str, Handler]] = [
        ("POST", "/chat/completions", _handle_chat),
        ("POST", "/completions", _handle_completions),
        ("POST", "/embeddings", _handle_embeddings),
        ("GET", "/models", _handle_models),
        ("POST", "/moderations", _handle_moderations),
    ]
    for prefix in ("/v1", ""):
        for method, path, handler in endpoints:
            yield web.route(method, prefix + path, handler)


def _control_routes() -> list[web.RouteDef]:
    return [
        web.post(CONTROL_PREFIX + "behaviour", _handle_set_behaviour),
        web.get(CONTROL_PREFIX + "requests", _handle_get_requests),
        web.post(CONTROL_PREFIX + "clear", _handle_clear),
        web.post(CONTROL_PREFIX + "reset", _handle_reset),
    ]


def create_app(state: MockState) -> web.Application:
    """Build the aiohttp application serving the mock API backed by ``state``."""
    app = web.Application(middlewares=[_record_and_auth])
    app[STATE_KEY] = state
    from tests.support.mock_anthropic import anthropic_routes  # (these import this module)
    from tests.support.mock_responses import responses_routes

    app.add_routes([*_api_routes(), *anthropic_routes(), *responses_routes(), *_control_routes()])
    return app


def _make_runner(app: web.Application) -> web.AppRunner:
    return web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=SHUTDOWN_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# Public pytest-facing wrapper
# --------------------------------------------------------------------------------------------


class MockUpstream:
    """A mock OpenAI-compatible server running in a background thread with its own event loop.

    Usage::

        with MockUpstream() as upstream:
            client = openai.OpenAI(base_url=upstream.base_url, api_key="k")
            ...
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        embedding_dim: int = DEFAULT_EMBEDDING_DIM,
        required_api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._state = MockState(
            embedding_dim=embedding_dim, required_api_key=required_api_key, models=tuple(models)
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> MockUpstream:
        """Start serving; returns once the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("MockUpstream already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="mock-upstream", daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), loop)
        try:
            self._port = future.result(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    async def _serve(self) -> int:
        runner = _make_runner(create_app(self._state))
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self._host, self._requested_port)
        await site.start()
        return site.port

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (cancelling in-flight handlers such as ``hang``) and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()
        self._loop = self._thread = self._runner = None
        self._port = None

    def __enter__(self) -> MockUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MockUpstream is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, including the ``/v1`` suffix."""
        return f"http://{self._host}:{self.port}/v1"

    # -- runtime control ---------------------------------------------------------------------

    def set_behaviour(self, model: str, behaviour: str | None) -> None:
        """Override the behaviour for the exact model name (e.g. ``"fail500"``); None clears it."""
        self._state.set_behaviour(model, behaviour)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Copy of all recorded API requests (control endpoints are not recorded)."""
        return self._state.requests()

    def clear(self) -> None:
        """Forget recorded requests."""
        self._state.clear()

    def reset(self) -> None:
        """Forget recorded requests and all behaviour overrides."""
        self._state.reset()


# --------------------------------------------------------------------------------------------
# Command-line entry point
# --------------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Mock OpenAI-compatible upstream for RouteIQ tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--embedding-dim", type=int, default=DEFAULT_EMBEDDING_DIM)
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer <key>'")
    return parser.parse_args(argv)


async def _run_cli(args: argparse.Namespace) -> None:
    state = MockState(embedding_dim=args.embedding_dim, required_api_key=args.api_key)
    runner = _make_runner(create_app(state))
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {site.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(_run_cli(_parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
