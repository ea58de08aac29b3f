"""Give every request an id, echo it on every response, and turn crashes into an enveloped 500.

The client's ``x-request-id`` is kept when it is sane. Catching unexpected exceptions here (and not
in Starlette's outer ServerErrorMiddleware) means even a crash answers with the id and the CORS
headers, and never with a traceback.
"""

from __future__ import annotations

import logging
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeiq.api.errors import APIError

logger = logging.getLogger("routeiq.request")

HEADER = b"x-request-id"
MAX_CLIENT_ID_LENGTH = 128


def _client_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            if 0 < len(value) <= MAX_CLIENT_ID_LENGTH and value.isascii() and value.decode().isprintable():
                return value.decode()
            return None
    return None


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 32 random hex digits, as uuid4().hex gives, without building a UUID object per request.
        request_id = _client_id(scope) or f"req_{secrets.token_hex(16)}"
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["started"] = time.perf_counter()  # for x-routeiq-overhead-ms
        header = (HEADER, request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            if started:
                raise  # the response is underway; the server closes the connection
            error = APIError(
                500, "internal error; quote the request id when reporting it", code="internal_error"
            )
            await error.to_response()(scope, receive, send_with_id)
