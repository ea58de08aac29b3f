"""Cap the requests a worker serves at once; shed the rest with 503 before they cost anything.

The slot is held until the response has been sent in full, so a long stream counts for as long
as it runs. Health probes are never shed: an overloaded worker is still alive and ready.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from routeiq.api.errors import service_unavailable

EXEMPT_PREFIXES = ("/_health/",)


class BackpressureMiddleware:
    def __init__(self, app: ASGIApp, max_concurrent: int, retry_after_seconds: int) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.retry_after_seconds = retry_after_seconds
        self.in_flight = 0
        self.shed_total = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrent:
            self.shed_total += 1
            error = service_unavailable(
                "the gateway is at capacity; retry shortly",
                code="overloaded",
                retry_after=self.retry_after_seconds,
            )
            await error.to_response()(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
