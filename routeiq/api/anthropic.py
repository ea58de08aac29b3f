"""Anthropic's Messages API (``POST /v1/messages``), served through the chat-completions path.

The body was validated and translated to a chat body when first read (``routeiq.translate``), so
policy, quotas, plugins and routing treat the call exactly as a chat completion; the dispatcher's
answer is translated back here: a whole answer into a ``message``, a stream event by event. Errors
get Anthropic's envelope from ``routeiq.middleware.anthropic_errors``. ``X-Claude-Code-Session-Id``
is the session for affinity (before ``metadata.user_id``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from routeiq.api.openai import _routing_context
from routeiq.api.runtime import runtime_of
from routeiq.executors.base import Operation
from routeiq.governance.call import current_call
from routeiq.governance.identity import ANONYMOUS
from routeiq.governance.quota import prompt_tokens
from routeiq.observability.ledger import current_trace
from routeiq.routing.affinity import scoped_session_id
from routeiq.translate.anthropic_response import chat_to_message
from routeiq.translate.anthropic_stream import AnthropicStream

router = APIRouter()

SESSION_HEADER = "x-claude-code-session-id"
REPLACED_HEADERS = frozenset({"content-length", "content-type"})


async def _translated_stream(
    chat_events: AsyncIterable[str | bytes | memoryview], stream: AnthropicStream
) -> AsyncIterator[bytes]:
    async for events in chat_events:
        out = stream.feed(events.encode() if isinstance(events, str) else bytes(events))
        if out:
            yield out
    closing = stream.finish()
    if closing:
        yield closing


def as_messages_response(response: Response, chat_body: Mapping[str, Any]) -> Response:
    """The dispatcher's chat answer as a Messages answer, with the same status and headers."""
    if isinstance(response, StreamingResponse):
        stream = AnthropicStream(chat_body, prompt_tokens(chat_body))
        response.body_iterator = _translated_stream(response.body_iterator, stream)
        return response
    message = chat_to_message(orjson.loads(response.body), chat_body)
    headers = {name: value for name, value in response.headers.items() if name not in REPLACED_HEADERS}
    return Response(
        orjson.dumps(message),
        status_code=response.status_code,
        headers=headers,
        media_type="application/json",
    )


async def messages(request: Request) -> Response:
    """Anthropic's Messages API: create a message (streaming with `stream: true`) on the deployment
    RouteIQ picks."""
    runtime = runtime_of(request)
    context = await _routing_context(request, runtime)
    call = current_call(request.scope)
    session = request.headers.get(SESSION_HEADER)
    if session:
        context.session_id = scoped_session_id((call.identity if call else ANONYMOUS).actor, session)
    started = request.scope.get("state", {}).get("started", time.perf_counter())
    trace = current_trace(request.scope)
    response = await runtime.dispatcher.dispatch(Operation.CHAT, context, started, call, trace)
    return as_messages_response(response, context.body)


for _path in ("/v1/messages", "/messages"):
    router.add_api_route(_path, messages, methods=["POST"], include_in_schema=_path.startswith("/v1"))
