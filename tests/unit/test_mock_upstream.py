"""Proves the mock upstream speaks the OpenAI wire format well enough for the official SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.support.mock_upstream import MockUpstream, embedding_vector

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there, please reply"}]
TOOLS: list[ChatCompletionToolParam] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}},
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as server:
        yield server


@pytest.fixture
def mock(upstream: MockUpstream) -> MockUpstream:
    upstream.reset()
    return upstream


@pytest.fixture
def client(mock: MockUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=mock.base_url, api_key="k", max_retries=0) as sdk_client:
        yield sdk_client


def _post_json(url: str, payload: object) -> object:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _sse_events(url: str, payload: object) -> list[str]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = response.read().decode()
    assert raw.endswith("\n\n")
    return [block.removeprefix("data: ") for block in raw.split("\n\n") if block]


def test_base_url_and_port(mock: MockUpstream) -> None:
    assert mock.port > 0
    assert mock.base_url == f"http://127.0.0.1:{mock.port}/v1"


def test_chat_non_stream(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(model="mock-gpt", messages=USER_MSG)
    assert result.id.startswith("chatcmpl-")
    assert result.model == "mock-gpt"
    assert result.choices[0].message.content == "mock reply from mock-gpt: hello there, please reply"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens > 0


def test_chat_honours_n(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(model="mock-gpt", messages=USER_MSG, n=3)
    assert [choice.index for choice in result.choices] == [0, 1, 2]


def test_chat_stream_without_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="mock-gpt", messages=USER_MSG, stream=True))
    assert all(chunk.object == "chat.completion.chunk" and chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == "mock reply from mock-gpt: hello there, please reply"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mock-gpt", messages=USER_MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    *content_chunks, usage_chunk = chunks
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None and usage_chunk.usage.total_tokens > 0
    assert all(chunk.usage is None and chunk.choices for chunk in content_chunks)


def test_chat_stream_wire_format(mock: MockUpstream) -> None:
    payload = {"model": "m", "messages": USER_MSG, "stream": True}
    plain = _sse_events(f"{mock.base_url}/chat/completions", payload)
    assert plain[-1] == "[DONE]"
    assert all("usage" not in json.loads(event) for event in plain[:-1])

    payload["stream_options"] = {"include_usage": True}
    with_usage = [
        json.loads(event) for event in _sse_events(f"{mock.base_url}/chat/completions", payload)[:-1]
    ]
    assert all(event["usage"] is None and event["choices"] for event in with_usage[:-1])
    assert with_usage[-1]["choices"] == [] and with_usage[-1]["usage"]["total_tokens"] > 0


def test_chat_tools_non_stream(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(model="mock-gpt", messages=USER_MSG, tools=TOOLS)
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert call.function.arguments == "{}"


def test_chat_tool_choice_none_answers_text(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model="mock-gpt", messages=USER_MSG, tools=TOOLS, tool_choice="none"
    )
    assert result.choices[0].message.tool_calls is None
    assert result.choices[0].finish_reason == "stop"


def test_chat_tools_stream(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model="mock-gpt", messages=USER_MSG, tools=TOOLS, stream=True)
    )
    calls = [call for chunk in chunks for call in chunk.choices[0].delta.tool_calls or []]
    assert calls[0].id and calls[0].function and calls[0].function.name == "get_weather"
    arguments = "".join(call.function.arguments or "" for call in calls if call.function)
    assert arguments == "{}"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_legacy_completions(client: openai.OpenAI) -> None:
    result = client.completions.create(model="mock-gpt", prompt="say something")
    assert result.id.startswith("cmpl-")
    assert result.choices[0].text == "mock reply from mock-gpt: say something"
    streamed = list(client.completions.create(model="mock-gpt", prompt="say something", stream=True))
    assert "".join(chunk.choices[0].text for chunk in streamed) == result.choices[0].text


def test_embeddings_float_and_base64_agree(client: openai.OpenAI) -> None:
    as_float = client.embeddings.create(model="mock-embed", input=["a", "b"], encoding_format="float")
    as_base64 = client.embeddings.create(model="mock-embed", input=["a", "b"])  # SDK default: base64
    assert as_float.model == "mock-embed"
    assert [len(item.embedding) for item in as_float.data] == [8, 8]
    assert [item.embedding for item in as_float.data] == [item.embedding for item in as_base64.data]
    assert as_float.data[0].embedding == embedding_vector("a", 8)
    assert as_float.data[0].embedding != as_float.data[1].embedding


def test_embeddings_wire_format_is_base64_string(mock: MockUpstream) -> None:
    payload = _post_json(
        f"{mock.base_url}/embeddings", {"model": "e", "input": "x", "encoding_format": "base64"}
    )
    assert isinstance(payload, dict)
    assert isinstance(payload["data"][0]["embedding"], str)


def test_models_on_both_paths(mock: MockUpstream) -> None:
    for url in (f"{mock.base_url}/models", f"http://127.0.0.1:{mock.port}/models"):
        with urllib.request.urlopen(url, timeout=5) as response:
            assert json.loads(response.read())["data"][0]["object"] == "model"


def test_failure_models(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-fail500", messages=USER_MSG)
    with pytest.raises(openai.RateLimitError) as rate_limited:
        client.chat.completions.create(model="gpt-fail429", messages=USER_MSG)
    assert rate_limited.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="embed-fail400", input="x")


def test_midstream_abort_raises_while_iterating(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-midstream", messages=USER_MSG, stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 2


def test_slow_and_hang(client: openai.OpenAI) -> None:
    started = time.monotonic()
    client.chat.completions.create(model="gpt-slow200ms", messages=USER_MSG)
    assert time.monotonic() - started >= 0.2
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).chat.completions.create(model="gpt-hang", messages=USER_MSG)


def test_chunk_delay_spaces_out_stream(client: openai.OpenAI) -> None:
    started = time.monotonic()
    chunks = list(client.chat.completions.create(model="gpt-chunkdelay30ms", messages=USER_MSG, stream=True))
    assert time.monotonic() - started >= 0.03 * (len(chunks) - 1)


def test_set_behaviour_overrides_exact_model(client: openai.OpenAI, mock: MockUpstream) -> None:
    mock.set_behaviour("mock-gpt", "fail500")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="mock-gpt", messages=USER_MSG)
    mock.set_behaviour("mock-gpt", None)
    assert client.chat.completions.create(model="mock-gpt", messages=USER_MSG).choices


def test_http_control_endpoints(client: openai.OpenAI, mock: MockUpstream) -> None:
    control = f"http://127.0.0.1:{mock.port}/_control"
    _post_json(f"{control}/behaviour", {"model": "gpt-fail500", "behaviour": "normal"})
    client.chat.completions.create(model="gpt-fail500", messages=USER_MSG)
    with urllib.request.urlopen(f"{control}/requests", timeout=5) as response:
        recorded = json.loads(response.read())
    assert [entry["path"] for entry in recorded] == ["/v1/chat/completions"]
    assert recorded[0]["method"] == "POST"
    assert recorded[0]["headers"]["authorization"] == "Bearer k"
    assert recorded[0]["body"]["model"] == "gpt-fail500"
    _post_json(f"{control}/clear", {})
    assert mock.requests == []


def test_required_api_key() -> None:
    with MockUpstream(required_api_key="secret") as server:
        bad = openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0)
        with bad, pytest.raises(openai.AuthenticationError):
            bad.models.list()
        with openai.OpenAI(base_url=server.base_url, api_key="secret", max_retries=0) as good:
            assert [model.id for model in good.models.list()] == ["mock-gpt", "mock-embed"]
        assert len(server.requests) == 2


def test_cli_prints_ready() -> None:
    command = [sys.executable, "-m", "tests.support.mock_upstream", "--port", "0"]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            word, port = process.stdout.readline().split()
            assert word == "READY"
            with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0) as client:
                assert client.chat.completions.create(model="m", messages=USER_MSG).model == "m"
        finally:
            process.terminate()
        assert process.wait(timeout=5) == 0
