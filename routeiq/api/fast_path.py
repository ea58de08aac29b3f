"""The model-call routes, answered without going through FastAPI's router on the hot path.

FastAPI's routing, its exception middleware, its dependency resolution and its per-request exit
stack cost about as much CPU as a governance layer, for routes that need none of them: RouteIQ
reads and validates their bodies itself, and their errors are RouteIQ's. This innermost layer
answers POSTs to those paths with the very same handlers; every other request, and the OpenAPI
description of these routes, stays FastAPI's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from routeiq.api.errors import error_response, store_error_response
from routeiq.errors import GatewayError

Handler = Callable[[Request], Awaitable[Response]]


class ModelCallRoutes:
    def __init__(self, app: ASGIApp, routes: Mapping[str, Handler]) -> None:
        """``routes``: the POST paths answered here (``/v1/chat/completions``...), by exact path."""
        self.app = app
        self._routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._routes.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            response = await handler(Request(scope, receive))
        except GatewayError as error:
            response = error_response(error)
        except Exception as error:
            from routeiq.store.database import StoreError  # SQLAlchemy: imported with the runtime

            if not isinstance(error, StoreError):
                raise  # as FastAPI would: the server's 500 handler answers
            response = store_error_response(error)
        await response(scope, receive, send)
