"""OpenAI's Responses API (``POST /v1/responses``), stateless, served through the chat-completions
path (``routeiq.api.translated``); errors keep the OpenAI envelope, as that API's are."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from routeiq.api.translated import dispatch_chat, source_body, translated_response
from routeiq.governance.quota import prompt_tokens
from routeiq.translate.responses_response import chat_to_response
from routeiq.translate.responses_stream import ResponsesStream

router = APIRouter()


async def create_response(request: Request) -> Response:
    """OpenAI's Responses API, stateless: create a response (streaming with `stream: true`) on the
    deployment RouteIQ picks. `previous_response_id` is refused: send the whole conversation."""
    response, context = await dispatch_chat(request)
    chat_body, request_body = context.body, source_body(request)
    return translated_response(
        response,
        lambda answer: chat_to_response(answer, request_body),
        lambda: ResponsesStream(request_body, chat_body, prompt_tokens(chat_body)),
    )


for _path in ("/v1/responses", "/responses"):
    router.add_api_route(_path, create_response, methods=["POST"], include_in_schema=_path.startswith("/v1"))

# Answered by ``routeiq.api.fast_path`` without FastAPI's routing, like the chat completions.
MODEL_CALL_ROUTES = {f"{prefix}/responses": create_response for prefix in ("/v1", "")}
