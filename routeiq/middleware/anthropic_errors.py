"""Errors on the Anthropic Messages routes in Anthropic's envelope, whichever layer refused.

Every layer and route answers in the OpenAI envelope (``routeiq.api.errors``). On ``/v1/messages``
and ``/v1/messages/count_tokens`` this layer, outside all the others, rewrites such an answer as
``{"type": "error", "error": {"type", "message"}}`` with the same status (so the anthropic SDK raises
the class that status means: 400 ``BadRequestError``, 401 ``AuthenticationError``, 403
``PermissionDeniedError``, 404 ``NotFoundError``, 413 ``RequestTooLargeError``, 429
``RateLimitError``, 5xx ``InternalServerError``) and the same headers. Bodies already in Anthropic's
envelope (an Anthropic-wire upstream's own error) and successful answers pass untouched.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ANTHROPIC_SUFFIXES = ("/messages", "/messages/count_tokens")
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
    504: "timeout_error",
}


def is_anthropic_path(path: str) -> bool:
    return path.endswith(ANTHROPIC_SUFFIXES)


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}


def rewrite(status: int, body: bytes) -> bytes:
    """``body`` in Anthropic's envelope when it is an OpenAI error body; else unchanged."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(data, dict) or data.get("type") == "error" or not isinstance(data.get("error"), dict):
        return body
    message = data["error"].get("message")
    return orjson.dumps(anthropic_error(status, str(message) if message is not None else "request failed"))


class AnthropicErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_anthropic_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def sending(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held = message  # an error body is small and whole: held until its end
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = rewrite(held["status"], b"".join(chunks))
            headers = [(name, value) for name, value in held.get("headers", []) if name != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode("latin-1")))
            await send({**held, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, sending)
