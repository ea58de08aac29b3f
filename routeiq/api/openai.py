"""The OpenAI-compatible data plane, served at ``/v1/...`` and at the bare paths."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from routeiq.api import request_schemas
from routeiq.api.models import model_list, retrieve_model
from routeiq.api.runtime import runtime_of
from routeiq.executors.base import Operation
from routeiq.governance.access import enforce_key_scope
from routeiq.governance.call import current_call, request_body
from routeiq.governance.identity import ANONYMOUS, Identity
from routeiq.observability.ledger import current_trace
from routeiq.routing.affinity import scoped_session_id
from routeiq.routing.preview import preview
from routeiq.routing.request import routing_context
from routeiq.routing.strategy import RoutingContext

if TYPE_CHECKING:  # typing only: the runtime module imports LiteLLM
    from routeiq.runtime import Runtime

router = APIRouter()

Endpoint = Callable[..., Awaitable[Any]]


def _both_paths(method: str, path: str, body: dict[str, Any] | None = None) -> Callable[[Endpoint], Endpoint]:
    """Register at ``/v1{path}`` (documented, with its JSON ``body`` schema) and at the bare path."""
    extra = request_schemas.request_body(body) if body is not None else None

    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            f"/v1{path}", endpoint, methods=[method], include_in_schema=True, openapi_extra=extra
        )
        router.add_api_route(path, endpoint, methods=[method], include_in_schema=False)
        return endpoint

    return register


async def _routing_context(request: Request, runtime: Runtime) -> RoutingContext:
    """The body (validated once, by whichever layer read it first), then group, profile and session
    (400/404/413 on failure); the group is the one policy and quotas resolved, when they did."""
    body = await request_body(request.scope, request.receive, runtime.settings.max_request_body_bytes)
    request_id = request.scope.get("state", {}).get("request_id", "")
    call = current_call(request.scope)
    target = call.resolve(runtime.deployments, runtime.settings.profile_group) if call is not None else None
    context = routing_context(
        body, request.headers, request_id, runtime.deployments, runtime.settings, target=target
    )
    identity = call.identity if call is not None else ANONYMOUS
    context.session_id = scoped_session_id(identity.actor, context.session_id)
    if call is not None and identity.kind == "virtual_key":  # its reach bounds real and dry runs alike
        fallbacks = runtime.settings.fallbacks_for(context.group)
        enforce_key_scope(call, context.group, fallbacks, runtime.deployments)
    return context


async def _serve(request: Request, operation: Operation) -> Response:
    runtime = runtime_of(request)
    context = await _routing_context(request, runtime)
    started = request.scope.get("state", {}).get("started", time.perf_counter())
    call = current_call(request.scope)
    trace = current_trace(request.scope)  # the request ledger's: what routing did, for its record
    return await runtime.dispatcher.dispatch(operation, context, started, call, trace)


@_both_paths("POST", "/chat/completions", request_schemas.CHAT)
async def chat_completions(request: Request) -> Response:
    """Create a chat completion (streaming with `stream: true`) on the deployment RouteIQ picks."""
    return await _serve(request, Operation.CHAT)


@_both_paths("POST", "/completions", request_schemas.COMPLETIONS)
async def completions(request: Request) -> Response:
    """Create a legacy text completion."""
    return await _serve(request, Operation.COMPLETIONS)


@_both_paths("POST", "/embeddings", request_schemas.EMBEDDINGS)
async def embeddings(request: Request) -> Response:
    """Create embeddings (`encoding_format` float or base64)."""
    return await _serve(request, Operation.EMBEDDINGS)


def _identity(request: Request) -> Identity:
    call = current_call(request.scope)
    return call.identity if call is not None else ANONYMOUS


@_both_paths("GET", "/models")
async def list_models(request: Request) -> dict[str, Any]:
    """The routing groups and profile names this caller can ask for, in the OpenAI list shape."""
    return model_list(_identity(request), runtime_of(request))


@_both_paths("GET", "/models/{model_id:path}")
async def get_model(request: Request, model_id: str) -> dict[str, Any]:
    """One routing group or profile name (the SDK's `models.retrieve`); 404 if this caller cannot use it."""
    return retrieve_model(model_id, _identity(request), runtime_of(request))


@_both_paths("POST", "/routeiq/route", request_schemas.CHAT)
async def route_preview(request: Request) -> dict[str, Any]:
    """Dry run: the decision RouteIQ would make for this chat request, without calling any model."""
    runtime = runtime_of(request)
    context = await _routing_context(request, runtime)
    call = current_call(request.scope)
    if call is not None:  # what the key may not use is not a candidate here either
        context.excluded |= call.excluded_deployments
    return await preview(runtime, context)


# The POST model calls answered by ``routeiq.api.fast_path`` without FastAPI's routing (same handlers).
MODEL_CALL_ROUTES = {
    f"{prefix}{path}": handler
    for path, handler in (
        ("/chat/completions", chat_completions),
        ("/completions", completions),
        ("/embeddings", embeddings),
    )
    for prefix in ("/v1", "")
}
