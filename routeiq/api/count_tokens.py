"""Anthropic's ``POST /v1/messages/count_tokens``: exact where a deployment can count, an estimate
that says so everywhere else.

The model is resolved like a Messages call's (group, profile or alias; the key's reach applies). If
the group has an Anthropic-wire deployment the key may use, the request is forwarded to it (the
deployment's model and key, the client's ``anthropic-version``/``anthropic-beta``) and its answer
returned as it is: ``x-routeiq-token-count: exact``. Otherwise the prompt is counted with the
tokenizer LiteLLM knows for the group's first deployment (its own, or ``cl100k_base`` for a model
it does not know): ``x-routeiq-token-count: estimated`` and ``x-routeiq-token-count-model`` naming
whose tokenizer counted. Either way ``x-routeiq-deployment-id`` says which deployment it was for.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from routeiq.api.runtime import runtime_of
from routeiq.errors import UnknownModel, UpstreamFailed
from routeiq.executors.anthropic_wire import messages_url, upstream_headers
from routeiq.governance.access import enforce_key_scope
from routeiq.governance.call import current_call, read_json_object
from routeiq.routing.deployments import Deployment
from routeiq.routing.profiles import resolve_target
from routeiq.translate.inbound import to_chat_body

router = APIRouter()

COUNT_HEADER = "x-routeiq-token-count"
COUNT_MODEL_HEADER = "x-routeiq-token-count-model"


def _estimate(deployment: Deployment, chat: dict[str, Any]) -> int:
    import litellm  # (the runtime has imported it already; kept out of this module's import)

    count = litellm.token_counter(
        model=deployment.litellm_model,
        messages=chat["messages"],
        tools=chat.get("tools"),
        use_default_image_token_count=True,  # never fetch an image URL to size it
    )
    return int(count)


async def _forward(
    http: aiohttp.ClientSession,
    deployment: Deployment,
    body: dict[str, Any],
    request: Request,
    seconds: float,
) -> Response:
    payload = {**body, "model": deployment.upstream_model}
    payload.pop("routeiq", None)
    try:
        async with http.post(
            messages_url(deployment, "/count_tokens"),
            data=orjson.dumps(payload),
            headers=upstream_headers(deployment, request.headers),
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as upstream:
            data = await upstream.read()
            status = upstream.status
    except (aiohttp.ClientError, TimeoutError) as error:
        raise UpstreamFailed(
            f"deployment {deployment.id} could not count tokens: {type(error).__name__}",
            502,
            "upstream_unreachable",
        ) from None
    headers = {"x-routeiq-deployment-id": deployment.id}
    if status < 400:
        headers[COUNT_HEADER] = "exact"
    return Response(data, status_code=status, headers=headers, media_type="application/json")


async def count_tokens(request: Request) -> Response:
    """Anthropic's token count for a Messages request: exact on Anthropic-wire deployments, an
    estimate (`x-routeiq-token-count: estimated`) elsewhere."""
    runtime = runtime_of(request)
    settings = runtime.settings
    body = await read_json_object(request.scope, request.receive, settings.max_request_body_bytes)
    chat = to_chat_body("messages", {**body, "max_tokens": 1})  # a count takes no max_tokens
    target = resolve_target(chat["model"], runtime.deployments, settings.profile_group)
    if target.group is None:
        raise UnknownModel(chat["model"], runtime.deployments.groups)
    call = current_call(request.scope)
    excluded: set[str] = set()
    if call is not None and call.identity.kind == "virtual_key":
        enforce_key_scope(call, target.group, [], runtime.deployments)
        excluded = call.excluded_deployments
    candidates = [d for d in runtime.deployments.group(target.group) if d.id not in excluded]
    native = next((d for d in candidates if d.speaks_anthropic), None)
    if native is not None:
        return await _forward(runtime.http, native, body, request, settings.request_timeout_seconds)
    deployment = candidates[0]
    tokens = await asyncio.to_thread(_estimate, deployment, chat)
    headers = {
        COUNT_HEADER: "estimated",
        COUNT_MODEL_HEADER: deployment.litellm_model,
        "x-routeiq-deployment-id": deployment.id,
    }
    return Response(orjson.dumps({"input_tokens": tokens}), headers=headers, media_type="application/json")


for _path in ("/v1/messages/count_tokens", "/messages/count_tokens"):
    router.add_api_route(_path, count_tokens, methods=["POST"], include_in_schema=_path.startswith("/v1"))
