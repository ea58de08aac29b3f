"""The OpenAI-compatible data plane, served at ``/v1/...`` and at the bare paths."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from routeiq.api.requests import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    read_json,
    validate,
)
from routeiq.executors.base import Operation
from routeiq.governance.access import enforce_key_scope
from routeiq.governance.call import current_call
from routeiq.routing.preview import preview
from routeiq.routing.request import routing_context
from routeiq.routing.strategy import RoutingContext

router = APIRouter()

Endpoint = Callable[[Request], Awaitable[Any]]


def _both_paths(method: str, path: str) -> Callable[[Endpoint], Endpoint]:
    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(f"/v1{path}", endpoint, methods=[method], include_in_schema=True)
        router.add_api_route(path, endpoint, methods=[method], include_in_schema=False)
        return endpoint

    return register


async def _routing_context(request: Request, schema: type[BaseModel]) -> RoutingContext:
    """Read and validate the body, then resolve group, profile and session (400/404/413 on failure)."""
    runtime = request.app.state.runtime
    body = await read_json(request, runtime.settings.max_request_body_bytes)
    validate(schema, body)
    request_id = request.scope.get("state", {}).get("request_id", "")
    return routing_context(body, request.headers, request_id, runtime.deployments, runtime.settings)


async def _serve(request: Request, operation: Operation, schema: type[BaseModel]) -> Response:
    context = await _routing_context(request, schema)
    started = request.scope.get("state", {}).get("started", time.perf_counter())
    runtime = request.app.state.runtime
    call = current_call(request.scope)
    if call is not None and call.identity.kind == "virtual_key":
        fallbacks = runtime.settings.fallbacks_for(context.group)
        enforce_key_scope(call, context.group, fallbacks, runtime.deployments)
    return await runtime.dispatcher.dispatch(operation, context, started, call)


@_both_paths("POST", "/chat/completions")
async def chat_completions(request: Request) -> Response:
    """Create a chat completion (streaming with `stream: true`) on the deployment RouteIQ picks."""
    return await _serve(request, Operation.CHAT, ChatCompletionRequest)


@_both_paths("POST", "/completions")
async def completions(request: Request) -> Response:
    """Create a legacy text completion."""
    return await _serve(request, Operation.COMPLETIONS, CompletionRequest)


@_both_paths("POST", "/embeddings")
async def embeddings(request: Request) -> Response:
    """Create embeddings (`encoding_format` float or base64)."""
    return await _serve(request, Operation.EMBEDDINGS, EmbeddingRequest)


@_both_paths("GET", "/models")
async def list_models(request: Request) -> dict[str, Any]:
    """The routing groups clients can ask for, in the OpenAI list shape."""
    runtime = request.app.state.runtime
    return {
        "object": "list",
        "data": [
            {"id": group, "object": "model", "created": runtime.started_at, "owned_by": "routeiq"}
            for group in runtime.deployments.groups
        ],
    }


@_both_paths("POST", "/routeiq/route")
async def route_preview(request: Request) -> dict[str, Any]:
    """Dry run: the decision RouteIQ would make for this chat request, without calling any model."""
    context = await _routing_context(request, ChatCompletionRequest)
    return await preview(request.app.state.runtime, context)
