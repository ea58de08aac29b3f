"""The one validation of OpenAI bodies (routeiq.api.requests), the path classification every layer
shares (routeiq.middleware.paths), the one reading of a body's text (routeiq.api.texts) and the one
resolution of a requested model to its group (routeiq.routing.profiles.resolve_target)."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from routeiq.api.errors import APIError, error_response, to_api_error
from routeiq.api.requests import check_body, validate_body
from routeiq.api.texts import content_text, rewrite_texts, texts
from routeiq.errors import GatewayError
from routeiq.governance.call import GovernedCall, current_call, load_body, new_call, request_body
from routeiq.governance.identity import ANONYMOUS
from routeiq.middleware.paths import body_kind, is_data_plane, is_public, is_shed, model_call_kind, path_kind
from routeiq.middleware.plugins import PluginsMiddleware
from routeiq.plugins.base import NoSettings, Plugin
from routeiq.plugins.manager import LoadedPlugin, PluginManager
from routeiq.routing.deployments import DeploymentTable
from routeiq.routing.profiles import resolve_target
from routeiq.routing.signals import read_signals
from routeiq.runtime_handle import RuntimeHandle
from routeiq.settings import Settings


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **fields}


def refusal(kind: Any, body: dict[str, Any]) -> APIError:
    with pytest.raises(APIError) as raised:
        validate_body(kind, body)
    error = raised.value
    assert error.status == 400
    assert error.to_body()["error"]["type"] == "invalid_request_error"
    return error


# --- each bad known field is a 400 naming it -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        (chat(model=""), "model"),
        (chat(model=5), "model"),
        ({"model": "auto"}, "messages"),
        (chat(messages=[]), "messages"),
        (chat(messages="hi"), "messages"),
        (chat(messages=["hi"]), "messages.0"),
        (chat(messages=[{"role": "wizard", "content": "hi"}]), "messages.0.role"),
        (chat(messages=[{"content": "hi"}]), "messages.0.role"),
        (chat(messages=[{"role": "system", "content": "a"}, {"role": 7, "content": "b"}]), "messages.1.role"),
        (chat(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
        (chat(messages=[{"role": "user", "content": {"text": "hi"}}]), "messages.0.content"),
        (chat(messages=[{"role": "user"}]), "messages.0.content"),
        (
            chat(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]),
            "messages.0.content.0.text",
        ),
        (chat(messages=[{"role": "user", "content": ["hi"]}]), "messages.0.content.0"),
        (chat(messages=[{"role": "user", "content": [{"text": "hi"}]}]), "messages.0.content.0.type"),
        (
            chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 3}}]}]),
            "messages.0.content.0.image_url.url",
        ),
        (chat(messages=[{"role": "user", "content": "hi", "name": 1}]), "messages.0.name"),
        (chat(messages=[{"role": "assistant", "content": None, "tool_calls": {}}]), "messages.0.tool_calls"),
        (chat(temperature="hot"), "temperature"),
        (chat(temperature=2.5), "temperature"),
        (chat(temperature=True), "temperature"),
        (chat(top_p=-0.1), "top_p"),
        (chat(presence_penalty=3), "presence_penalty"),
        (chat(frequency_penalty="0"), "frequency_penalty"),
        (chat(max_tokens=-5), "max_tokens"),
        (chat(max_tokens=0), "max_tokens"),
        (chat(max_tokens=1.5), "max_tokens"),
        (chat(max_completion_tokens="10"), "max_completion_tokens"),
        (chat(n=0), "n"),
        (chat(n=129), "n"),
        (chat(n="2"), "n"),
        (chat(stop=5), "stop"),
        (chat(stop=["a", 1]), "stop.1"),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (chat(stream="yes"), "stream"),
        (chat(stream_options=True), "stream_options"),
        (chat(stream=True, stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
        (chat(tools={"type": "function"}), "tools"),
        (chat(tools=[{"function": {"name": "f"}}]), "tools.0.type"),
        (chat(tools=[{"type": "function"}]), "tools.0.function"),
        (chat(tools=[{"type": "function", "function": {"name": ""}}]), "tools.0.function.name"),
        (
            chat(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
            "tools.0.function.parameters",
        ),
        (chat(tool_choice="sometimes"), "tool_choice"),
        (chat(response_format="json"), "response_format"),
        (chat(response_format={"type": "yaml"}), "response_format.type"),
        (chat(response_format={"type": "json_schema"}), "response_format.json_schema"),
        (
            chat(response_format={"type": "json_schema", "json_schema": {}}),
            "response_format.json_schema.name",
        ),
        (chat(logit_bias={"50256": 101}), "logit_bias.50256"),
        (chat(logprobs=1), "logprobs"),
        (chat(top_logprobs=21), "top_logprobs"),
        (chat(parallel_tool_calls="no"), "parallel_tool_calls"),
        (chat(seed=1.5), "seed"),
        (chat(user=42), "user"),
    ],
)
def test_a_bad_chat_field_is_a_400_naming_it(body: dict[str, Any], param: str) -> None:
    error = refusal("chat", body)
    assert error.param == param
    assert param in error.message


@pytest.mark.parametrize(
    ("kind", "body", "param"),
    [
        ("completions", {"model": "m"}, "prompt"),
        ("completions", {"model": "m", "prompt": 5}, "prompt"),
        ("completions", {"model": "m", "prompt": []}, "prompt"),
        ("completions", {"model": "m", "prompt": ["a", 1]}, "prompt.1"),
        ("completions", {"model": "m", "prompt": [[1, -2]]}, "prompt.0.1"),
        ("completions", {"model": "m", "prompt": "p", "max_tokens": -1}, "max_tokens"),
        ("completions", {"model": "m", "prompt": "p", "logprobs": 6}, "logprobs"),
        ("completions", {"model": "m", "prompt": "p", "echo": "true"}, "echo"),
        ("embeddings", {"model": "m"}, "input"),
        ("embeddings", {"model": "m", "input": {"text": "x"}}, "input"),
        # Unhashable values where a choice is expected (found by schemathesis: a 500 before).
        ("embeddings", {"model": "m", "input": "x", "encoding_format": {}}, "encoding_format"),
        ("chat", chat(messages=[{"role": [], "content": "hi"}]), "messages.0.role"),
        ("chat", chat(response_format={"type": {}}), "response_format.type"),
        ("embeddings", {"model": "m", "input": [1.5]}, "input.0"),
        ("embeddings", {"model": "m", "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ("embeddings", {"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
    ],
)
def test_a_bad_completion_or_embedding_field_is_a_400_naming_it(
    kind: Any, body: dict[str, Any], param: str
) -> None:
    assert refusal(kind, body).param == param


@pytest.mark.parametrize(
    "body",
    [
        chat(),
        chat(messages=[{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]),
        chat(
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "what is this"}]},
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}],
                },
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
                {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "..."}}]},
            ]
        ),
        # The SDKs send null for options left unset.
        chat(temperature=None, top_p=None, n=None, stop=None, max_tokens=None, tools=None, user=None),
        chat(
            temperature=0,
            top_p=1,
            n=2,
            stop="\n",
            max_tokens=16,
            max_completion_tokens=16,
            presence_penalty=-2,
            frequency_penalty=2.0,
            seed=7,
            logprobs=True,
            top_logprobs=3,
            logit_bias={"50256": -100},
            stream=True,
            stream_options={"include_usage": True},
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            tool_choice={"type": "function", "function": {"name": "f"}},
            parallel_tool_calls=False,
            response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
            user="u-1",
        ),
    ],
)
def test_valid_chat_bodies_pass(body: dict[str, Any]) -> None:
    check_body("chat", body)


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("completions", {"model": "m", "prompt": "say hi", "max_tokens": 0, "echo": True, "logprobs": 1}),
        ("completions", {"model": "m", "prompt": ["a", "b"]}),
        ("completions", {"model": "m", "prompt": [1, 2, 3]}),
        ("completions", {"model": "m", "prompt": [[1, 2], [3]]}),
        ("embeddings", {"model": "m", "input": "x", "encoding_format": "base64", "dimensions": 8}),
        ("embeddings", {"model": "m", "input": ["a", "b"]}),
        ("embeddings", {"model": "m", "input": [[1, 2]]}),
    ],
)
def test_valid_completion_and_embedding_bodies_pass(kind: Any, body: dict[str, Any]) -> None:
    check_body(kind, body)


def test_unknown_fields_are_left_exactly_as_sent() -> None:
    extras = {
        "x_vendor": {"nested": [1, 2.5, None, True, "é"]},
        "metadata": {"k": "v"},
        "routeiq": {"profile": "eco"},
        "temperature_scale": "hot",  # not a known field, however it looks
        "reasoning_effort": "high",
    }
    body = chat(**copy.deepcopy(extras))
    before = orjson.dumps(body)
    validate_body("chat", body)
    assert orjson.dumps(body) == before  # nothing added, dropped, coerced or reordered
    assert {name: body[name] for name in extras} == extras


# --- the body is validated where it is first read, by the layers and the API alike ---------------


def app_reading_bodies(layer_reads_first: bool) -> ASGIApp:
    """A route that serves ``request_body`` behind an optional layer that reads it first (as policy,
    quotas and plugins do with ``load_body``)."""

    async def route(request: Request) -> JSONResponse:
        try:
            body = await request_body(request.scope, request.receive, 65536)
        except GatewayError as error:
            refusal = to_api_error(error)
            return JSONResponse(refusal.to_body(), status_code=refusal.status)
        return JSONResponse(body)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            call = new_call(scope, ANONYMOUS)
            if layer_reads_first:
                try:
                    await load_body(call, scope, receive, 65536)
                except GatewayError as error:
                    await error_response(error)(scope, receive, send)
                    return
                assert current_call(scope) is call and call.body_loaded
        await inner(scope, receive, send)

    inner = Starlette(routes=[Route("/v1/chat/completions", route, methods=["POST"])])
    return app


@pytest.mark.parametrize("layer_reads_first", [True, False])
async def test_governance_and_api_validate_the_same_way(layer_reads_first: bool) -> None:
    transport = httpx.ASGITransport(app=app_reading_bodies(layer_reads_first))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        bad = await client.post("/v1/chat/completions", json=chat(temperature="hot"))
        good = await client.post("/v1/chat/completions", json=chat(extra={"a": [1]}))
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "temperature"
    assert good.status_code == 200 and good.json()["extra"] == {"a": [1]}


# --- one reading of a body's text ------------------------------------------------------------------


def test_non_string_text_parts_are_not_text_and_do_not_crash_signals() -> None:
    # Validation refuses these; the readers still must not raise on a body it has not seen.
    body = chat(
        messages=[{"role": "user", "content": [{"type": "text", "text": 5}, {"type": "text", "text": "ok"}]}]
    )
    assert list(texts(body)) == ["ok"]
    assert read_signals(body).text == "ok"


def test_one_reading_of_text_for_signals_quotas_and_guardrails() -> None:
    body = chat(
        messages=[
            {"role": "system", "content": "rules"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": "u"}],
            },
        ]
    )
    assert list(texts(body)) == ["rules", "look"]
    assert list(texts(body, roles={"user"})) == ["look"]
    assert content_text(body["messages"][1]["content"]) == "look"
    assert read_signals(body).text == "look" and read_signals(body).vision
    assert list(texts({"model": "m", "prompt": ["a", "b"]})) == ["a", "b"]
    assert list(texts({"model": "m", "input": [[1, 2]]})) == []  # token ids are not text
    assert read_signals({"model": "m", "prompt": [[1, 2]]}).text == ""
    rewrite_texts(body, str.upper)
    assert list(texts(body)) == ["RULES", "LOOK"]


# --- one resolution of the requested model ------------------------------------------------------


def table() -> DeploymentTable:
    settings = Settings(
        model_list=[
            {"model_name": "auto", "litellm_params": {"model": "openai/a"}, "model_info": {"id": "a"}},
            {"model_name": "chat", "litellm_params": {"model": "openai/c"}, "model_info": {"id": "c"}},
        ]
    )
    return DeploymentTable(settings.model_list)


@pytest.mark.parametrize(
    ("model", "group", "profile"),
    [
        ("auto", "auto", None),
        ("chat", "chat", None),
        ("premium", "auto", "premium"),
        ("eco", "auto", "eco"),
        ("free", "auto", "free"),
        ("reasoning", "auto", "reasoning"),
        ("AUTO", "auto", "auto"),
        ("Auto", "auto", "auto"),
        ("Premium", "auto", "premium"),
        ("Chat", None, None),  # groups are case-sensitive; only profile names are not
        ("nothing", None, None),
    ],
)
def test_a_requested_model_resolves_to_the_group_that_serves_it(
    model: str, group: str | None, profile: str | None
) -> None:
    target = resolve_target(model, table(), "auto")
    assert (target.model, target.group, target.profile) == (model, group, profile)


def test_the_call_resolves_once_and_again_only_when_the_model_changes() -> None:
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    call = new_call(scope, ANONYMOUS)
    call.body = chat(model="PREMIUM")
    assert call.group == "PREMIUM"  # not resolved yet: the model as sent
    first = call.resolve(table(), "auto")
    assert first is not None and call.group == "auto"
    assert call.resolve(table(), "auto") is first
    call.body["model"] = "chat"  # a plugin rewrote it
    assert call.group == "chat" and call.resolve(table(), "auto") is not first


# --- one classification of paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "public", "shed", "data"),
    [
        ("/_health/live", "health", True, False, False),
        ("/_health/ready", "health", True, False, False),
        ("/docs", "docs", True, False, False),
        ("/openapi.json", "docs", True, False, False),
        ("/metrics", "metrics", False, False, False),
        ("/admin", "admin", False, True, False),
        ("/admin/keys", "admin", False, True, False),
        ("/administrator", "data", False, True, True),
        ("/v1/chat/completions", "data", False, True, True),
        ("/v1/models", "data", False, True, True),
    ],
)
def test_every_layer_classifies_a_path_the_same_way(
    path: str, kind: str, public: bool, shed: bool, data: bool
) -> None:
    assert path_kind(path) == kind
    assert (is_public(path), is_shed(path), is_data_plane(path)) == (public, shed, data)


def test_model_calls_and_the_dry_run_carry_bodies_of_their_kind() -> None:
    assert model_call_kind("POST", "/v1/chat/completions") == "chat"
    assert model_call_kind("POST", "/completions") == "completions"
    assert model_call_kind("POST", "/v1/embeddings") == "embeddings"
    assert model_call_kind("GET", "/v1/chat/completions") is None
    assert model_call_kind("POST", "/v1/routeiq/route") is None  # not metered
    assert body_kind("POST", "/v1/routeiq/route") == "chat"  # but validated like a chat
    assert body_kind("GET", "/v1/models") is None


class Gatekeeper(Plugin[NoSettings]):
    """Answers every request it is shown itself (as an IP allow-list plugin might refuse one)."""

    name = "gatekeeper"

    async def on_request(self, call: GovernedCall, connection: HTTPConnection) -> Response | None:
        return JSONResponse({"answered_by": "plugin"}, status_code=403)


@pytest.mark.parametrize(
    ("path", "shown_to_plugins"),
    [("/v1/models", True), ("/v1/chat/completions", True), ("/admin/keys", False), ("/metrics", False)],
)
async def test_plugins_act_on_the_data_plane_only(path: str, shown_to_plugins: bool) -> None:
    async def route(request: Request) -> JSONResponse:
        return JSONResponse({"answered_by": "route"})

    class Caller:  # stands where AuthMiddleware stands
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            new_call(scope, ANONYMOUS)
            await self.app(scope, receive, send)

    manager = PluginManager(
        [LoadedPlugin(Gatekeeper(NoSettings()), "test", 1, timeout_seconds=1, abort=True)]
    )
    handle = RuntimeHandle()
    handle.attach(SimpleNamespace(plugins=manager, settings=Settings()))
    app = Starlette(
        routes=[Route(path, route, methods=["GET", "POST"])],
        middleware=[Middleware(Caller), Middleware(PluginsMiddleware, runtime=handle)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(path)
    assert response.json()["answered_by"] == ("plugin" if shown_to_plugins else "route")
