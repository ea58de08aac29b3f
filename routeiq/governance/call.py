"""One request as the governance layers see it, shared through ``scope["state"]["call"]``.

Auth creates it with the identity, and adds the headers the layers put on it to the response, whichever
layer or route produced that response. Policy, Quota and Plugins read and annotate it; the JSON body is
read once (``load_body``), may be rewritten by plugins, and is what the API layer then serves. The
dispatcher fills in what happened upstream (``served``, ``usage``, ``cost_usd``) so the layers can
settle after the response, streams included: by the time the downstream app returns, the stream
has been sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Message, Receive, Scope

from routeiq.api.errors import APIError, bad_request
from routeiq.governance.identity import Identity

STATE_KEY = "call"
MODEL_CALL_SUFFIXES = ("/chat/completions", "/completions", "/embeddings")
GUARDRAILS_HEADER = b"x-routeiq-applied-guardrails"


@dataclass(slots=True)
class Served:
    """The deployment that answered, as far as governance cares."""

    deployment_id: str
    group: str
    model: str  # the upstream model string, e.g. openai/gpt-4o-mini


@dataclass
class GovernedCall:
    identity: Identity
    request_id: str
    method: str
    route: str  # the path, e.g. /v1/chat/completions
    client_ip: str | None
    is_model_call: bool
    body: dict[str, Any] | None = None  # parsed once by load_body; plugins may rewrite it
    body_loaded: bool = False
    excluded_deployments: set[str] = field(default_factory=set)  # policy / allowed-model filters
    response_headers: dict[str, str] = field(default_factory=dict)  # added to the response start
    guardrails: list[str] = field(default_factory=list)  # applied, in order
    # Filled by the dispatcher once a deployment answered:
    served: Served | None = None
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None

    @property
    def group(self) -> str | None:
        """The model the client asked for (a routing group or a profile name)."""
        model = (self.body or {}).get("model")
        return model if isinstance(model, str) else None

    def add_headers(self, headers: dict[str, str]) -> None:
        self.response_headers.update(headers)

    def header_items(self) -> Iterable[tuple[bytes, bytes]]:
        """The headers the layers put on this call, and the guardrails that ran, in order."""
        for name, value in self.response_headers.items():
            yield name.encode("latin-1"), value.encode("latin-1")
        if self.guardrails:
            yield GUARDRAILS_HEADER, ",".join(dict.fromkeys(self.guardrails)).encode("latin-1")

    def with_headers(self, start: Message) -> Message:
        """The response start with this call's headers added; a header the response already has
        (set by the route itself) is left as it is."""
        extra = list(self.header_items())
        if not extra:
            return start
        headers = list(start.get("headers", []))
        present = {name.lower() for name, _ in headers}
        headers += [(name, value) for name, value in extra if name not in present]
        return {**start, "headers": headers}


def new_call(scope: Scope, identity: Identity) -> GovernedCall:
    state = scope.setdefault("state", {})
    path: str = scope["path"]
    client = scope.get("client")
    call = GovernedCall(
        identity=identity,
        request_id=state.get("request_id", ""),
        method=scope["method"],
        route=path,
        client_ip=client[0] if client else None,
        is_model_call=scope["method"] == "POST" and path.endswith(MODEL_CALL_SUFFIXES),
    )
    state[STATE_KEY] = call
    return call


def current_call(scope: Scope) -> GovernedCall | None:
    call = scope.get("state", {}).get(STATE_KEY)
    return call if isinstance(call, GovernedCall) else None


async def load_body(call: GovernedCall, scope: Scope, receive: Receive, limit: int) -> dict[str, Any] | None:
    """Read and parse a model call's JSON body once (413 past ``limit``, 400 if not a JSON object).

    Later layers and the API get the parsed dict from ``call.body``; nothing reads the stream again.
    """
    if call.body_loaded or not call.is_model_call:
        return call.body
    call.body = await read_json_object(scope, receive, limit)
    call.body_loaded = True
    return call.body


async def read_json_object(scope: Scope, receive: Receive, limit: int) -> dict[str, Any]:
    """The request body as a JSON object; 413 past ``limit`` bytes (declared or read so far)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return parse_json_object(b"".join(chunks))


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise bad_request(f"the request body is not valid JSON: {error}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", code="invalid_json")
    return body


def too_large(limit: int) -> APIError:
    return APIError(413, f"the request body is larger than {limit} bytes", code="request_too_large")
