"""Admit a request only when the worker has room for it, and nothing new while draining.

The slot is held until the response has been sent in full, so a long stream counts for as long
as it runs. Health probes, metrics scrapes and the API documentation bypass the gate
(``routeiq.middleware.paths``): an overloaded worker is still alive, a draining one must be able to
say so, and load is exactly when its metrics matter. The admin dashboard's live stream bypasses it
too: an open dashboard would hold a slot of the data plane for hours; the stream ends on drain itself
(``routeiq.api.admin.metrics``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from routeiq.api.errors import service_unavailable
from routeiq.middleware.paths import is_shed
from routeiq.resilience.traffic import Rejected, TrafficGate

UNGATED_STREAMS = frozenset({"/admin/metrics/stream"})

MESSAGES = {
    "overloaded": "the gateway is at capacity; retry shortly",
    "draining": "this gateway instance is shutting down; retry on another",
}


class BackpressureMiddleware:
    def __init__(self, app: ASGIApp, gate: TrafficGate, retry_after_seconds: int) -> None:
        self.app = app
        self.gate = gate
        self.retry_after_seconds = retry_after_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_shed(scope["path"]) or scope["path"] in UNGATED_STREAMS:
            await self.app(scope, receive, send)
            return
        try:
            await self.gate.acquire()
        except Rejected as rejected:
            error = service_unavailable(
                MESSAGES[rejected.reason], code=rejected.reason, retry_after=self.retry_after_seconds
            )
            await error.to_response()(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.release()
