"""The plugins layer: runs the configured plugins' hooks around every request.

Before the app: ``on_request`` (may answer on its own), then for model calls the body is read once
and ``pre_call`` may rewrite it or refuse the call. After: ``on_stream_chunk`` on each server-sent
event of a streamed answer, then ``post_call`` (status below 400) or ``on_error``. The response
carries ``x-routeiq-applied-guardrails`` naming the guardrails that ran.

It only does what the configured plugins need: with none, a request passes straight through; a
non-streamed body is held back only for a plugin that reads it, and stream events are re-framed only
for a plugin that implements ``on_stream_chunk``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeiq.api.errors import to_api_error
from routeiq.errors import GatewayError
from routeiq.governance.call import GovernedCall, current_call, load_body
from routeiq.middleware.paths import is_data_plane
from routeiq.plugins.base import CallResult
from routeiq.plugins.manager import PluginManager
from routeiq.runtime_handle import RuntimeHandle

logger = logging.getLogger("routeiq.plugins")

EVENT_END = b"\n\n"


def split_events(data: bytes) -> Iterator[bytes]:
    """Server-sent events, each with its blank-line terminator (a final unterminated piece too)."""
    start = 0
    while (end := data.find(EVENT_END, start)) != -1:
        yield data[start : end + len(EVENT_END)]
        start = end + len(EVENT_END)
    if start < len(data):
        yield data[start:]


def sse_error(error: GatewayError) -> bytes:
    return b"data: " + orjson.dumps(to_api_error(error).to_body()) + EVENT_END


class PluginsMiddleware:
    def __init__(self, app: ASGIApp, runtime: RuntimeHandle) -> None:
        self.app = app
        self._runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        runtime = self._runtime.get()
        manager = runtime.plugins
        call = current_call(scope)  # None on public paths (health, API docs): not governed
        # Plugins act on the data plane only: not on the control plane or metrics
        # (routeiq.middleware.paths), which a misbehaving plugin must not be able to lock.
        if call is None or not manager.active or not is_data_plane(call.route):
            await self.app(scope, receive, send)
            return

        try:
            if manager.on_request:
                response = await manager.run_on_request(call, HTTPConnection(scope))
                if response is not None:
                    await response(scope, receive, send)
                    return
            if call.is_model_call and manager.pre_call:
                await load_body(call, scope, receive, runtime.settings.max_request_body_bytes)
                await manager.run_pre_call(call)
        except GatewayError as error:
            refusal = to_api_error(error)
            await refusal.to_response()(scope, receive, send)
            if call.is_model_call:
                body = orjson.dumps(refusal.to_body())
                await manager.run_on_error(call, CallResult(refusal.status, streamed=False, body=body))
            return
        if not (call.is_model_call and manager.observes_responses):
            await self.app(scope, receive, send)
            return
        await _ObservedResponse(manager, call, send).serve(self.app, scope, receive)


class _ObservedResponse:
    """One model call's response as the after-hooks need it: status, streamed or not, and (for
    plugins that read it) the held-back body."""

    def __init__(self, manager: PluginManager, call: GovernedCall, send: Send) -> None:
        self.manager = manager
        self.call = call
        self.downstream = send
        self.status = 500
        self.started = False
        self.streamed = False
        self.held_start: Message | None = None  # set while a non-streamed body is held back
        self.held_body: list[bytes] = []
        self.filter_events = False
        self.partial = b""  # an unfinished event carried to the next body message
        self.cut_off = False  # an on_stream_chunk refusal ended the stream early

    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive) -> None:
        try:
            await app(scope, receive, self.send)
        except Exception:
            if not self.started:
                await self.manager.run_on_error(self.call, CallResult(500, streamed=False))
            raise
        body = b"".join(self.held_body) if self.held_start is not None else None
        result = CallResult(self.status, streamed=self.streamed, body=body)
        if self.status >= 400:
            await self.manager.run_on_error(self.call, result)
            await self._release(result)
            return
        try:
            await self.manager.run_post_call(self.call, result)
        except GatewayError as error:
            if self.held_start is None:
                logger.warning("a plugin refused request %s after it was sent", self.call.request_id)
                return
            self.held_start = None
            refusal = to_api_error(error)
            await refusal.to_response()(scope, receive, self.downstream)
            await self.manager.run_on_error(self.call, CallResult(refusal.status, streamed=False))
            return
        await self._release(result)

    async def _release(self, result: CallResult) -> None:
        """Send a held-back response: its start (length fixed if a plugin replaced the body), its body."""
        if self.held_start is None:
            return
        body = result.body or b""
        headers = [
            (name, value) for name, value in self.held_start.get("headers", []) if name != b"content-length"
        ]
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        await self.downstream({**self.held_start, "headers": headers})
        await self.downstream({"type": "http.response.body", "body": body, "more_body": False})

    async def send(self, message: Message) -> None:
        if self.cut_off:
            return  # the client's stream already ended; the rest of the upstream's is dropped
        if message["type"] == "http.response.start":
            self.status = message["status"]
            content_type = next((v for k, v in message.get("headers", []) if k == b"content-type"), b"")
            self.streamed = content_type.startswith(b"text/event-stream")
            self.filter_events = self.streamed and bool(self.manager.on_stream_chunk)
            if self.manager.reads_response_body and not self.streamed:
                self.held_start = message
                return
            self.started = True
            await self.downstream(message)
            return
        if message["type"] == "http.response.body":
            if self.held_start is not None:
                self.held_body.append(message.get("body", b""))
                return
            if self.filter_events:
                await self._send_events(message)
                return
        await self.downstream(message)

    async def _send_events(self, message: Message) -> None:
        """Hand each complete event to on_stream_chunk; an event split across messages waits."""
        more = message.get("more_body", False)
        data = self.partial + message.get("body", b"")
        if more:
            end = data.rfind(EVENT_END)
            cut = end + len(EVENT_END) if end != -1 else 0
        else:
            cut = len(data)
        complete, self.partial = data[:cut], data[cut:]
        out: list[bytes] = []
        for event in split_events(complete):
            try:
                out.append(await self.manager.run_stream_event(self.call, event))
            except GatewayError as error:
                # Past the first byte an error can only be an SSE error event, then the end.
                out.append(sse_error(error))
                self.cut_off = True
                await self.downstream(
                    {"type": "http.response.body", "body": b"".join(out), "more_body": False}
                )
                return
        if out or not more:
            await self.downstream({"type": "http.response.body", "body": b"".join(out), "more_body": more})
