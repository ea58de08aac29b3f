"""One request as the governance layers see it, shared through ``scope["state"]["call"]``.

Auth creates it with the identity, and adds the headers the layers put on it to the response, whichever
layer or route produced that response. Policy, Quota and Plugins read and annotate it; the JSON body is
read and validated once (``load_body``: the first layer that needs it, or the API when none did), may
be rewritten by plugins, and is what the API layer then serves. The group the requested model resolves
to (``resolve``: profile names and their case variants are served by ``profile_group``) is worked out
once too, and policy, quotas and routing all use that one answer. The
dispatcher fills in what happened upstream (``served``, ``usage``, ``cost_usd``) so that, after the
response, quotas settle the call's reservation with its real usage and plugins and the request ledger
see who answered, streams included: by the time the downstream app returns, the stream has been sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Message, Receive, Scope

from routeiq.api.requests import validate_body
from routeiq.errors import BodyTooLarge, MalformedBody
from routeiq.governance.identity import Identity
from routeiq.middleware.paths import MODEL_CALL_SUFFIXES as MODEL_CALL_SUFFIXES  # (re-exported)
from routeiq.middleware.paths import BodyKind, body_kind, model_call_kind
from routeiq.routing.deployments import DeploymentTable
from routeiq.routing.profiles import Target, resolve_target
from routeiq.translate.inbound import TRANSLATED_KINDS, to_chat_body

STATE_KEY = "call"
GUARDRAILS_HEADER = b"x-routeiq-applied-guardrails"


@dataclass(slots=True)
class Served:
    """The deployment that answered, as far as governance cares."""

    deployment_id: str
    group: str
    model: str  # the upstream model string, e.g. openai/gpt-4o-mini


@dataclass(slots=True)
class Charge:
    """One upstream call a request made, when it made more than one (a cascade): each is a spend row."""

    served: Served
    usage: dict[str, Any] | None
    cost_usd: float | None


@dataclass
class GovernedCall:
    identity: Identity
    request_id: str
    method: str
    route: str  # the path, e.g. /v1/chat/completions
    client_ip: str | None
    is_model_call: bool  # metered and shown to plugins: chat, completions, embeddings
    body: dict[str, Any] | None = None  # parsed and validated once by load_body; plugins may rewrite it
    # The body as the client sent it when ``body`` is its chat translation (Anthropic Messages,
    # OpenAI Responses): what a deployment speaking that API natively is sent.
    source_body: dict[str, Any] | None = None
    body_loaded: bool = False
    kind: BodyKind | None = None  # the OpenAI body this request carries (None: none to read)
    target: Target | None = None  # the requested model resolved to its group (``resolve``)
    excluded_deployments: set[str] = field(default_factory=set)  # policy / allowed-model filters
    response_headers: dict[str, str] = field(default_factory=dict)  # added to the response start
    guardrails: list[str] = field(default_factory=list)  # applied, in order
    # Filled by the dispatcher once a deployment answered:
    served: Served | None = None
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    # Every call made, when there were several (a cascade); ``usage`` and ``cost_usd`` are then their sums.
    charges: list[Charge] = field(default_factory=list)

    @property
    def model(self) -> str | None:
        """The model the client asked for (a routing group or a profile name), as sent."""
        model = (self.body or {}).get("model")
        return model if isinstance(model, str) else None

    @property
    def group(self) -> str | None:
        """The routing group serving the call once ``resolve`` ran (``premium`` or ``AUTO`` -> the
        profile group; None for an unknown model); before that, the model as sent."""
        model = self.model
        if self.target is not None and self.target.model == model:
            return self.target.group
        return model

    def resolve(self, deployments: DeploymentTable, profile_group: str) -> Target | None:
        """The requested model resolved to its group, once (again only if a plugin changed the model)."""
        model = self.model
        if model is None:
            return None
        if self.target is None or self.target.model != model:
            self.target = resolve_target(model, deployments, profile_group)
        return self.target

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
    method: str = scope["method"]
    call = GovernedCall(
        identity=identity,
        request_id=state.get("request_id", ""),
        method=method,
        route=path,
        client_ip=client[0] if client else None,
        is_model_call=model_call_kind(method, path) is not None,
        kind=body_kind(method, path),
    )
    state[STATE_KEY] = call
    return call


def current_call(scope: Scope) -> GovernedCall | None:
    call = scope.get("state", {}).get(STATE_KEY)
    return call if isinstance(call, GovernedCall) else None


async def load_body(call: GovernedCall, scope: Scope, receive: Receive, limit: int) -> dict[str, Any] | None:
    """Read, parse and validate the call's OpenAI body once (413 past ``limit``, 400 if it is not a
    JSON object or a known field is wrong, ``param`` naming it). None for requests without one.

    Later layers and the API get the parsed dict from ``call.body``; nothing reads the stream again,
    and nothing acts on a body that failed validation.
    """
    if call.body_loaded or call.kind is None:
        return call.body
    body = await read_json_object(scope, receive, limit)
    call.body = served_body(call.kind, body)
    if call.kind in TRANSLATED_KINDS:
        call.source_body = body
    call.body_loaded = True
    return call.body


def served_body(kind: BodyKind, body: dict[str, Any]) -> dict[str, Any]:
    """The validated body every layer and the router see: the body itself, or for the APIs served by
    translation its chat-completions equivalent (400 in the API's own terms when it is invalid)."""
    if kind in TRANSLATED_KINDS:
        return to_chat_body(kind, body)
    validate_body(kind, body)
    return body


async def request_body(scope: Scope, receive: Receive, limit: int) -> dict[str, Any]:
    """The validated body the API serves: the call's (read by a governance layer, perhaps rewritten
    by a plugin) or, when no layer needed it, read and validated now by the same ``load_body``."""
    call = current_call(scope)
    if call is not None and call.kind is not None:
        body = await load_body(call, scope, receive, limit)
        if body is not None:
            return body
    body = await read_json_object(scope, receive, limit)
    kind = body_kind(scope["method"], scope["path"])
    return served_body(kind, body) if kind is not None else body


async def read_json_object(scope: Scope, receive: Receive, limit: int) -> dict[str, Any]:
    """The request body as a JSON object; 413 past ``limit`` bytes (declared or read so far)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return parse_json_object(b"".join(chunks))


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise MalformedBody(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise MalformedBody("the request body must be a JSON object")
    return body
