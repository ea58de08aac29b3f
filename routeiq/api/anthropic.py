"""Anthropic's Messages API (``POST /v1/messages``).

A deployment that speaks the Anthropic wire gets the request as sent, and its answer goes back as
bytes (``routeiq.executors.anthropic_wire``); any other is served through the chat-completions
path (``routeiq.api.translated``). Errors get Anthropic's envelope from
``routeiq.middleware.anthropic_errors``; ``X-Claude-Code-Session-Id`` is the session for affinity.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from routeiq.api.runtime import runtime_of
from routeiq.api.translated import dispatch_chat, sendable_body, translated_response
from routeiq.executors.anthropic_wire import MessagesCall, forwarded_headers
from routeiq.governance.call import current_call
from routeiq.governance.quota import prompt_tokens
from routeiq.translate.anthropic_response import chat_to_message
from routeiq.translate.anthropic_stream import AnthropicStream
from routeiq.translate.chat_targets import DROPPED_HEADER

router = APIRouter()


async def messages_call(request: Request) -> MessagesCall:
    """The request as sent, for Anthropic-wire deployments (unless only its translation may go),
    and what its translation carries that not every chat deployment takes."""
    body = await sendable_body(request)
    runtime = runtime_of(request)
    settings = runtime.settings
    call = current_call(request.scope)
    return MessagesCall(
        runtime.http,
        runtime.router.health(),
        body,
        forwarded_headers(request.scope["headers"]),
        settings.request_timeout_seconds,
        settings.connect_timeout_seconds,
        call.body if call is not None and call.body is not None else {},
    )


async def messages(request: Request) -> Response:
    """Anthropic's Messages API: create a message (streaming with `stream: true`) on the deployment
    RouteIQ picks."""
    native = await messages_call(request)
    response, context = await dispatch_chat(request, native)
    if native.answered:
        return response  # Anthropic's own answer, as sent
    if native.dropped:  # what the deployment that answered could not take, said rather than failed
        response.headers[DROPPED_HEADER] = ",".join(native.dropped)
    chat_body = context.body
    return translated_response(
        response,
        lambda answer: chat_to_message(answer, chat_body),
        lambda: AnthropicStream(chat_body, prompt_tokens(chat_body)),
    )


for _path in ("/v1/messages", "/messages"):
    router.add_api_route(_path, messages, methods=["POST"], include_in_schema=_path.startswith("/v1"))

# Answered by ``routeiq.api.fast_path`` without FastAPI's routing, like the chat completions.
MODEL_CALL_ROUTES = {f"{prefix}/messages": messages for prefix in ("/v1", "")}
