"""Anthropic's Messages API (``POST /v1/messages``), served through the chat-completions path
(``routeiq.api.translated``). Errors get Anthropic's envelope from
``routeiq.middleware.anthropic_errors``; ``X-Claude-Code-Session-Id`` is the session for affinity.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from routeiq.api.translated import dispatch_chat, translated_response
from routeiq.governance.quota import prompt_tokens
from routeiq.translate.anthropic_response import chat_to_message
from routeiq.translate.anthropic_stream import AnthropicStream

router = APIRouter()


async def messages(request: Request) -> Response:
    """Anthropic's Messages API: create a message (streaming with `stream: true`) on the deployment
    RouteIQ picks."""
    response, context = await dispatch_chat(request)
    chat_body = context.body
    return translated_response(
        response,
        lambda answer: chat_to_message(answer, chat_body),
        lambda: AnthropicStream(chat_body, prompt_tokens(chat_body)),
    )


for _path in ("/v1/messages", "/messages"):
    router.add_api_route(_path, messages, methods=["POST"], include_in_schema=_path.startswith("/v1"))
