"""How a route reaches its app's ``Runtime``: one typed accessor instead of ``request.app.state``.

A plain function rather than a FastAPI dependency: the data-plane routes call it on the hot path,
where a dependency would add its resolution (and an await) to every request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from routeiq.runtime_handle import RuntimeHandle

if TYPE_CHECKING:  # typing only: the runtime module imports LiteLLM
    from routeiq.runtime import Runtime


def runtime_handle(connection: HTTPConnection) -> RuntimeHandle:
    handle: RuntimeHandle = connection.app.state.runtime  # put there by create_app
    return handle


def runtime_of(connection: HTTPConnection) -> Runtime:
    """The app's runtime (``NotStarted`` before its lifespan built it)."""
    return runtime_handle(connection).get()
