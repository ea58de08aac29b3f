"""The official OpenAI SDK against the real gateway, with only a base_url swap, on both executors."""

from __future__ import annotations

import base64
import re
import struct

import openai
import pytest

from tests.e2e.conftest import Stack

USER = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.mark.parametrize("with_v1", [True, False])
def test_chat_completion_routes_and_explains(stack: Stack, with_v1: bool) -> None:
    raw = stack.client(with_v1).chat.completions.with_raw_response.create(model="auto", messages=USER)
    completion = raw.parse()
    served = raw.headers["x-routeiq-served-model"]
    assert served in {"mock-alpha", "mock-beta"}
    assert completion.model == served
    assert completion.choices[0].message.content.startswith(f"mock reply from {served}")
    assert raw.headers["x-routeiq-deployment-id"] == {"mock-alpha": "alpha", "mock-beta": "beta"}[served]
    assert raw.headers["x-routeiq-strategy"] == "llmrouter-centroid"
    assert raw.headers["x-routeiq-attempted-fallbacks"] == "0"
    # Milliseconds with two decimals; that it measures the gateway's own time is in test_plugins.py.
    assert re.fullmatch(r"\d+\.\d{2}", raw.headers["x-routeiq-overhead-ms"])
    assert raw.headers["x-request-id"]
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_client_request_id_is_echoed(stack: Stack) -> None:
    client = stack.client(default_headers={"x-request-id": "trace-1234"})
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-request-id"] == "trace-1234"


def test_streaming_without_usage(stack: Stack) -> None:
    stream = stack.client().chat.completions.create(model="auto", messages=USER, stream=True)
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text.startswith("mock reply from mock-")
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices and chunks[-1].choices[0].finish_reason == "stop"


def test_streaming_with_usage(stack: Stack) -> None:
    stream = stack.client().chat.completions.create(
        model="auto", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


def test_upstream_sees_its_model_name_and_credentials(stack: Stack) -> None:
    stack.upstream.clear()
    list(stack.client().chat.completions.create(model="auto", messages=USER, stream=True))
    (sent,) = [r for r in stack.upstream.requests if r["path"].endswith("/chat/completions")]
    assert sent["body"]["model"] in {"mock-alpha", "mock-beta"}
    assert sent["headers"]["authorization"] == "Bearer sk-upstream"
    if stack.executor == "passthrough":  # usage is asked for even though the client did not
        assert sent["body"]["stream_options"] == {"include_usage": True}


def test_tool_calls(stack: Stack) -> None:
    completion = stack.client().chat.completions.create(
        model="auto", messages=USER, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert completion.choices[0].finish_reason == "tool_calls"


def test_streamed_tool_calls(stack: Stack) -> None:
    stream = stack.client().chat.completions.create(
        model="auto", messages=USER, tools=[WEATHER_TOOL], stream=True
    )
    names = [
        call.function.name
        for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
        if call.function and call.function.name
    ]
    assert names == ["get_weather"]


def test_n_and_response_format_and_extra_fields_pass_through(stack: Stack) -> None:
    stack.upstream.clear()
    completion = stack.client().chat.completions.create(
        model="auto",
        messages=USER,
        n=2,
        response_format={"type": "json_object"},
        extra_body={"top_k": 5},
    )
    assert len(completion.choices) == 2
    (sent,) = [r for r in stack.upstream.requests if r["path"].endswith("/chat/completions")]
    assert sent["body"]["n"] == 2
    assert sent["body"]["response_format"] == {"type": "json_object"}
    assert sent["body"]["top_k"] == 5


def test_embeddings_float_and_explicit_base64_agree(stack: Stack) -> None:
    client = stack.client()
    floats = client.embeddings.create(model="embed", input=["hello", "world"], encoding_format="float")
    assert [item.index for item in floats.data] == [0, 1]
    assert all(len(item.embedding) == 8 for item in floats.data)
    assert floats.data[0].embedding != floats.data[1].embedding
    # Asked for explicitly, the SDK hands back base64 as sent: little-endian float32.
    encoded = client.embeddings.create(model="embed", input=["hello", "world"], encoding_format="base64")
    for as_float, as_base64 in zip(floats.data, encoded.data, strict=True):
        decoded = struct.unpack("<8f", base64.b64decode(as_base64.embedding))
        assert decoded == pytest.approx(as_float.embedding, rel=1e-6)


def test_embeddings_default_sdk_encoding_is_base64(stack: Stack) -> None:
    stack.upstream.clear()
    result = stack.client().embeddings.create(model="embed", input="hello")
    assert len(result.data[0].embedding) == 8
    if stack.executor == "passthrough":
        (sent,) = [r for r in stack.upstream.requests if r["path"].endswith("/embeddings")]
        assert sent["body"]["encoding_format"] == "base64"


def test_legacy_completions(stack: Stack) -> None:
    completion = stack.client().completions.create(model="auto", prompt="Say hi")
    assert completion.choices[0].text
    streamed = list(stack.client().completions.create(model="auto", prompt="Say hi", stream=True))
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices)


@pytest.mark.parametrize("with_v1", [True, False])
def test_models_lists_groups(stack: Stack, with_v1: bool) -> None:
    ids = [model.id for model in stack.client(with_v1).models.list()]
    assert "auto" in ids and "embed" in ids
    assert "mock-alpha" not in ids  # deployments are not groups


def test_bad_request(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client().chat.completions.create(model="auto", messages=[])
    assert caught.value.request_id
    assert caught.value.body["param"] == "messages"


def test_authentication_error(stack: Stack) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        stack.client(api_key="sk-wrong").chat.completions.create(model="auto", messages=USER)
    assert caught.value.request_id
    assert caught.value.code == "invalid_api_key"


def test_unknown_model_is_not_found(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        stack.client().chat.completions.create(model="no-such-group", messages=USER)
    assert caught.value.request_id
    assert caught.value.code == "model_not_found"


def test_upstream_rate_limit(stack: Stack) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        stack.client().chat.completions.create(model="limited", messages=USER)
    assert caught.value.request_id
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert "retry-after-ms" in caught.value.response.headers


def test_upstream_failure_is_bad_gateway(stack: Stack) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        stack.client().chat.completions.create(model="broken", messages=USER)
    assert caught.value.status_code in (502, 503)  # 503 once the lone deployment is cooling down
    assert caught.value.request_id
    # In RouteIQ's words, with the routing headers a success carries.
    assert "litellm" not in caught.value.message.lower()
    assert "'broken'" in caught.value.message
    assert caught.value.response.headers["x-routeiq-group"] == "broken"
    assert caught.value.response.headers["x-routeiq-strategy"]


def test_upstream_caller_fault_passes_through(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client().chat.completions.create(model="rejecting", messages=USER)
    assert caught.value.request_id


def test_upstream_timeout(stack: Stack) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        stack.client().chat.completions.create(model="stuck", messages=USER)
    assert caught.value.status_code == 504
    assert caught.value.body["code"] == "upstream_timeout"


def test_body_over_limit(stack: Stack) -> None:
    huge = [{"role": "user", "content": "x" * 70_000}]
    with pytest.raises(openai.APIStatusError) as caught:
        stack.client().chat.completions.create(model="auto", messages=huge)
    assert caught.value.status_code == 413
    assert caught.value.request_id


def test_mid_stream_failure_raises_in_sdk(stack: Stack) -> None:
    stream = stack.client().chat.completions.create(model="midstream", messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert received, "the chunks before the failure reach the client"


def test_fallback_to_healthy_deployment(stack: Stack) -> None:
    stack.upstream.set_behaviour("flaky-one", "fail500")
    stack.upstream.clear()
    client = stack.client()
    for _ in range(6):
        raw = client.chat.completions.with_raw_response.create(model="flaky", messages=USER)
        assert raw.headers["x-routeiq-deployment-id"] == "flaky-two"
        assert raw.parse().model == "flaky-two"
    failing_calls = [
        r for r in stack.upstream.requests if r["body"] and r["body"].get("model") == "flaky-one"
    ]
    assert len(failing_calls) <= 1, "a failed deployment cools down: the next picks skip it"


def test_fallback_group(stack: Stack) -> None:
    raw = stack.client().chat.completions.with_raw_response.create(model="primary", messages=USER)
    assert raw.headers["x-routeiq-group"] == "auto"
    assert raw.parse().choices[0].message.content.startswith("mock reply from mock-")


def test_admin_needs_admin_key(stack: Stack) -> None:
    import httpx

    url = f"{stack.gateway.url}/admin/status"
    assert httpx.get(url, headers={"authorization": "Bearer sk-test-master"}).status_code == 401
    status = httpx.get(url, headers={"authorization": "Bearer sk-test-admin"})
    assert status.status_code == 200
    executors = {d["id"]: d["executor"] for d in status.json()["deployments"]}
    assert executors["alpha"] == stack.executor
