"""Serving an API translated to chat completions (Anthropic Messages, OpenAI Responses).

The body was validated and translated when first read (``routeiq.translate``), so policy, quotas,
plugins and routing treat the call exactly as a chat completion, and the dispatcher serves it like
one. What comes back is translated here, with the dispatcher's status and ``x-routeiq-*`` headers
kept: a whole answer by ``translate``, a stream event by event through a feeder (``feed`` bytes in,
events out; ``finish`` closes a stream the upstream ended without its last event).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import orjson
from fastapi import Request
from starlette.responses import Response, StreamingResponse

from routeiq.api.openai import _routing_context
from routeiq.api.runtime import runtime_of
from routeiq.executors.base import Operation
from routeiq.executors.native import NativeCall
from routeiq.governance.call import current_call, request_body
from routeiq.governance.identity import ANONYMOUS
from routeiq.observability.ledger import current_trace
from routeiq.routing.affinity import scoped_session_id
from routeiq.routing.strategy import RoutingContext
from routeiq.translate.inbound import to_chat_body

# Coding agents name their conversation in a header of their own: Claude Code, Codex (in this order).
SESSION_HEADERS = (b"x-claude-code-session-id", b"session_id")
REPLACED_HEADERS = frozenset({"content-length", "content-type"})


class StreamTranslator(Protocol):
    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


async def dispatch_chat(
    request: Request, native: NativeCall | None = None
) -> tuple[Response, RoutingContext]:
    """The translated call served like a chat completion, or as sent (``native``) by a deployment
    that speaks its API; the response as the dispatcher made it."""
    runtime = runtime_of(request)
    context = await _routing_context(request, runtime)
    call = current_call(request.scope)
    session = _session_header(request.scope["headers"])
    if session:  # the agent's own conversation id, in the caller's namespace like any session
        context.session_id = scoped_session_id((call.identity if call else ANONYMOUS).actor, session)
    started = request.scope.get("state", {}).get("started", time.perf_counter())
    trace = current_trace(request.scope)
    response = await runtime.dispatcher.dispatch(Operation.CHAT, context, started, call, trace, native)
    return response, context


def _session_header(raw_headers: list[tuple[bytes, bytes]]) -> str | None:
    """The agent's session header (Claude Code's first), read from the scope's raw list in one pass."""
    found = {name: value for name, value in raw_headers if name in SESSION_HEADERS and value}
    value = next((found[name] for name in SESSION_HEADERS if name in found), None)
    return value.decode("latin-1") if value is not None else None


async def sendable_body(request: Request) -> Mapping[str, Any] | None:
    """The body as the client sent it, when a deployment speaking its API may get it as sent; None
    when the passthrough is off, or a plugin rewrote the call (a redacting guardrail's change must
    reach the model, so the rewritten chat body is served instead)."""
    runtime = runtime_of(request)
    settings = runtime.settings
    await request_body(request.scope, request.receive, settings.max_request_body_bytes)  # (read once)
    call = current_call(request.scope)
    if settings.passthrough != "auto" or call is None or call.source_body is None or call.kind is None:
        return None
    # Only a pre_call hook can have rewritten it; with none, no second translation to compare.
    if runtime.plugins.pre_call and call.body != to_chat_body(call.kind, call.source_body):
        return None
    return call.source_body


def source_body(request: Request) -> Mapping[str, Any]:
    """The body as the client sent it, before translation."""
    call = current_call(request.scope)
    return call.source_body or {} if call is not None else {}


async def _translated_events(
    chat_events: AsyncIterable[str | bytes | memoryview], translator: StreamTranslator
) -> AsyncIterator[bytes]:
    async for events in chat_events:
        out = translator.feed(events.encode() if isinstance(events, str) else bytes(events))
        if out:
            yield out
    closing = translator.finish()
    if closing:
        yield closing


def translated_response(
    response: Response,
    translate: Callable[[dict[str, Any]], dict[str, Any]],
    stream: Callable[[], StreamTranslator],
) -> Response:
    """``response`` (the dispatcher's chat answer) in the client's API, same status and headers."""
    if isinstance(response, StreamingResponse):
        response.body_iterator = _translated_events(response.body_iterator, stream())
        return response
    body = orjson.dumps(translate(orjson.loads(response.body)))
    headers = {name: value for name, value in response.headers.items() if name not in REPLACED_HEADERS}
    return Response(body, status_code=response.status_code, headers=headers, media_type="application/json")
