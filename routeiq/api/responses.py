"""OpenAI's Responses API (``POST /v1/responses``), stateless. A deployment that serves that API
itself gets the request as sent (``routeiq.executors.responses_wire``); any other is served through
the chat-completions path (``routeiq.api.translated``). Errors keep the OpenAI envelope."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from routeiq.api.runtime import runtime_of
from routeiq.api.translated import dispatch_chat, sendable_body, source_body, translated_response
from routeiq.executors.responses_wire import ResponsesCall
from routeiq.governance.quota import prompt_tokens
from routeiq.translate.responses_response import chat_to_response
from routeiq.translate.responses_stream import ResponsesStream

router = APIRouter()


async def native_call(request: Request) -> ResponsesCall | None:
    """The request as sent, for deployments serving the Responses API (None: only its translation)."""
    body = await sendable_body(request)
    if body is None:
        return None
    runtime = runtime_of(request)
    settings = runtime.settings
    return ResponsesCall(
        runtime.http,
        runtime.router.health(),
        body,
        settings.request_timeout_seconds,
        settings.connect_timeout_seconds,
    )


async def create_response(request: Request) -> Response:
    """OpenAI's Responses API, stateless: create a response (streaming with `stream: true`) on the
    deployment RouteIQ picks. `previous_response_id` is refused: send the whole conversation."""
    native = await native_call(request)
    response, context = await dispatch_chat(request, native)
    if native is not None and native.answered:
        return response  # the deployment's own Responses answer, as sent
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
