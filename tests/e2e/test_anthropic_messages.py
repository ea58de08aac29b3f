"""The official anthropic SDK against the real gateway's ``/v1/messages``: served by OpenAI-wire
deployments (translated both ways: text, system prompt, images, tools, streaming, usage, errors) and
by Anthropic-wire deployments (forwarded as sent), and ``count_tokens`` for both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

pytestmark = pytest.mark.usefixtures("clear_of_hour_rollover")  # counts calls in hour windows

MASTER_KEY = "sk-test-master"
USER = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
METERED = {"metric": "output_tokens", "window": "hour", "limit": 35}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def _anthropic(group: str, model: str, api_base: str) -> dict[str, Any]:
    """An Anthropic-wire deployment on the mock's Anthropic side (tests/support/mock_anthropic.py)."""
    params = {"model": f"anthropic/{model}", "api_base": api_base, "api_key": "sk-upstream"}
    return {"model_name": group, "litellm_params": params, "model_info": {"id": group}}


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as mock:
        yield mock


@pytest.fixture(scope="module")
def gateway(upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    api_base = upstream.base_url
    config: dict[str, Any] = {
        "model_list": [
            deployment("auto", "mock-toolargs", api_base, id="alpha"),
            deployment("limited", "gpt-fail429", api_base, id="limited"),
            deployment("midstream", "gpt-midstream", api_base, id="midstream"),
            _anthropic("claude", "claude-mock", api_base),
            _anthropic("claude-limited", "claude-fail429", api_base),
            _anthropic("claude-midstream", "claude-midstream", api_base),
            deployment("metered", "mock-metered", api_base, id="metered"),
            deployment("tiered", "mock-budget", api_base, id="tiered-budget", tier="budget"),
            deployment("tiered", "mock-premium", api_base, id="tiered-premium", tier="premium"),
            _anthropic("claude-metered", "claude-metered", api_base),
            deployment(
                "reasoner",
                "mock-reasoner",
                api_base,
                id="reasoner",
                supports_reasoning=True,
                supports_pdf_input=True,
            ),
        ],
        "router_settings": {"num_retries": 0, "allowed_fails": 0, "cooldown_time": 1},
        "routeiq": {
            "model_aliases": {"claude-sonnet-4-5": "auto", "claude-haiku-4-5": "eco"},
            "plugins": [
                {"name": "content_filter", "settings": {"categories": {"finance": ["insider trading"]}}}
            ],
            # 35 output tokens an hour: the mock answers these groups in 10 words (tokens), and a call
            # reserves its max_tokens (20) until it settles to what it really used.
            "quotas": {"groups": {group: [METERED] for group in ("metered", "claude-metered")}},
        },
    }
    env = {"ROUTEIQ_MASTER_KEY": MASTER_KEY}
    with Gateway(config, tmp_path_factory.mktemp("anthropic"), env) as running:
        yield running


@pytest.fixture
def client(gateway: Gateway, upstream: MockUpstream) -> anthropic.Anthropic:
    upstream.clear()
    return anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=20)


def _sent(upstream: MockUpstream) -> dict[str, Any]:
    (request,) = [r for r in upstream.requests if r["path"].endswith("/chat/completions")]
    return dict(request["body"])


def test_text_message_with_system_and_headers(client: anthropic.Anthropic, upstream: MockUpstream) -> None:
    raw = client.messages.with_raw_response.create(
        model="auto",
        max_tokens=64,
        system="Answer briefly.",
        messages=USER,
        extra_body={"temperature": 0.5},  # (no longer an argument of the SDK's create)
        metadata={"user_id": "user-7"},
        stop_sequences=["\n\n"],
    )
    message = raw.parse()
    assert raw.headers["x-routeiq-served-model"] == "mock-toolargs"
    assert raw.headers["x-routeiq-group"] == "auto"
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.model == "mock-toolargs"
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("mock reply from mock-toolargs: What is the capital")
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    sent = _sent(upstream)
    assert sent["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert (sent["max_tokens"], sent["temperature"], sent["user"], sent["stop"]) == (
        64,
        0.5,
        "user-7",
        ["\n\n"],
    )
    # The mock counts words: 2 + 6 in the prompts, and its reply's words.
    assert message.usage.input_tokens == 8
    assert message.usage.output_tokens == len(message.content[0].text.split())


def test_pinned_model_ids_are_routed_by_their_aliases(client: anthropic.Anthropic) -> None:
    sonnet = client.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=8, messages=USER)
    assert sonnet.headers["x-routeiq-group"] == "auto"
    assert sonnet.parse().model == "mock-toolargs"  # the model that answered, as the headers say
    haiku = client.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=8,
        messages=USER,
        extra_headers={"x-claude-code-session-id": "s-1"},
    )
    assert (haiku.headers["x-routeiq-group"], haiku.headers["x-routeiq-profile"]) == ("auto", "eco")


def test_claude_codes_session_header_keeps_a_hard_conversation_on_the_strong_tier(
    client: anthropic.Anthropic,
) -> None:
    hard = [
        {
            "role": "user",
            "content": "Design a sharded ledger with exactly-once semantics and proofs of correctness",
        }
    ]
    session = {"x-claude-code-session-id": "conversation-1"}
    first = client.messages.with_raw_response.create(
        model="tiered", max_tokens=8, messages=hard, extra_headers=session
    )
    assert first.headers["x-routeiq-served-model"] == "mock-premium"
    alone = client.messages.with_raw_response.create(model="tiered", max_tokens=8, messages=USER)
    assert alone.headers["x-routeiq-served-model"] == "mock-budget"
    again = client.messages.with_raw_response.create(
        model="tiered", max_tokens=8, messages=USER, extra_headers=session
    )
    assert again.headers["x-routeiq-served-model"] == "mock-premium"
    assert "session already at premium" in again.headers["x-routeiq-reason"]


def test_bearer_auth_and_image(client: anthropic.Anthropic, gateway: Gateway, upstream: MockUpstream) -> None:
    bearer = anthropic.Anthropic(base_url=gateway.url, auth_token=MASTER_KEY, max_retries=0, timeout=20)
    content: Any = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "Describe it"},
    ]
    message = bearer.messages.create(
        model="auto", max_tokens=32, messages=[{"role": "user", "content": content}]
    )
    assert message.content[0].type == "text"
    (user,) = _sent(upstream)["messages"]
    assert user["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "text", "text": "Describe it"},
    ]


def test_tool_use_round_trip(client: anthropic.Anthropic, upstream: MockUpstream) -> None:
    first = client.messages.create(
        model="auto",
        max_tokens=64,
        messages=USER,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    )
    assert first.stop_reason == "tool_use"
    (tool_use,) = first.content
    assert tool_use.type == "tool_use" and tool_use.name == "get_weather"
    assert tool_use.input == {"city": "mock-city"}
    sent = _sent(upstream)
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER["input_schema"],
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    upstream.clear()
    history: Any = [
        *USER,
        {"role": "assistant", "content": [tool_use.model_dump()]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use.id, "content": "18 degrees"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    second = client.messages.create(model="auto", max_tokens=64, messages=history)
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text" and "And tomorrow?" in second.content[0].text
    messages = _sent(upstream)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": tool_use.id,
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"mock-city"}'},
            }
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": tool_use.id, "content": "18 degrees"}
    assert messages[3] == {"role": "user", "content": "And tomorrow?"}


def _events(gateway: Gateway, body: dict[str, Any]) -> list[str]:
    headers = {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/messages", json=body, headers=headers, timeout=20
    ) as response:
        assert response.status_code == 200
        return [line[len("event: ") :] for line in response.iter_lines() if line.startswith("event: ")]


def test_streamed_text_usage_and_event_order(client: anthropic.Anthropic, gateway: Gateway) -> None:
    with client.messages.stream(model="auto", max_tokens=64, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("mock reply from mock-toolargs: What is the capital")
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn"
    # The real usage in message_delta (never zero), the mock's word counts.
    assert final.usage.output_tokens == len(text.split())
    assert final.usage.input_tokens == 6
    events = _events(gateway, {"model": "auto", "max_tokens": 64, "messages": USER, "stream": True})
    assert events[:3] == ["message_start", "ping", "content_block_start"]
    assert set(events[3:-3]) == {"content_block_delta"}
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_streamed_tool_use_keeps_its_arguments(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="auto", max_tokens=64, messages=USER, tools=[WEATHER]) as stream:
        deltas = [event.delta.partial_json for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    assert len(deltas) > 1 and "".join(deltas) == '{"city": "mock-city"}'.replace(" ", "")
    (tool_use,) = final.content
    assert tool_use.type == "tool_use" and tool_use.input == {"city": "mock-city"}
    assert tool_use.id.startswith("call_")
    assert final.stop_reason == "tool_use"


def test_failure_mid_stream_raises_in_the_sdk(client: anthropic.Anthropic) -> None:
    stream = client.messages.stream(model="midstream", max_tokens=64, messages=USER)
    with pytest.raises(anthropic.APIStatusError) as raised, stream as events:
        for _ in events:
            pass
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "api_error", "message": "deployment midstream broke off its stream"},
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto", "messages": USER}, "max_tokens"),
        (
            {"model": "auto", "max_tokens": 8, "messages": [{"role": "system", "content": "x"}]},
            "messages.0.role",
        ),
        (
            {
                "model": "auto",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": [{"type": "video"}]}],
            },
            "messages.0.content.0.type",
        ),
    ],
)
def test_bad_input_is_a_400_in_anthropics_envelope(
    client: anthropic.Anthropic, body: dict[str, Any], param: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.post("/v1/messages", body=body, cast_to=httpx.Response)
    error = raised.value.body
    assert isinstance(error, dict) and error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert f"'{param}'" in error["error"]["message"]


def test_refusals_raise_the_sdks_exception_classes(client: anthropic.Anthropic, gateway: Gateway) -> None:
    wrong_key = anthropic.Anthropic(base_url=gateway.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as unauthenticated:
        wrong_key.messages.create(model="auto", max_tokens=8, messages=USER)
    assert unauthenticated.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.messages.create(model="no-such-group", max_tokens=8, messages=USER)
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="limited", max_tokens=8, messages=USER)


def test_openapi_documents_the_route(gateway: Gateway) -> None:
    assert "/v1/messages" in httpx.get(f"{gateway.url}/openapi.json").json()["paths"]


# --- Anthropic-wire deployments: the request forwarded as sent ------------------------------------


def _forwarded(upstream: MockUpstream) -> tuple[dict[str, Any], dict[str, str]]:
    (request,) = [r for r in upstream.requests if r["path"].startswith("/v1/messages")]
    return dict(request["body"]), request["headers"]


def test_anthropic_wire_gets_the_request_as_sent(client: anthropic.Anthropic, upstream: MockUpstream) -> None:
    raw = client.messages.with_raw_response.create(
        model="claude",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=USER,
        thinking={"type": "enabled", "budget_tokens": 1024},
        extra_body={"top_k": 5},
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    message = raw.parse()
    assert raw.headers["x-routeiq-served-model"] == "claude-mock"
    assert raw.headers["x-routeiq-deployment-id"] == "claude"
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("mock reply from claude-mock: What is the capital")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (
        8,
        len(message.content[0].text.split()),
    )
    body, headers = _forwarded(upstream)
    # What translation would drop (thinking, top_k, cache_control) arrives: the body is the client's.
    assert body["model"] == "claude-mock"
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024} and body["top_k"] == 5
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert headers["x-api-key"] == "sk-upstream"  # the deployment's key, not the caller's
    assert headers["anthropic-version"] == raw.http_request.headers["anthropic-version"]  # the client's
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert "authorization" not in headers


def test_anthropic_wire_stream_and_tool_use(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="claude", max_tokens=64, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("mock reply from claude-mock") and final.usage.output_tokens == len(text.split())
    with client.messages.stream(model="claude", max_tokens=64, messages=USER, tools=[WEATHER]) as stream:
        final = stream.get_final_message()
    (tool_use,) = final.content
    assert tool_use.type == "tool_use" and tool_use.input == {"city": "mock-city"}
    assert final.stop_reason == "tool_use"


def test_anthropic_wire_failures(client: anthropic.Anthropic, gateway: Gateway) -> None:
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="claude-limited", max_tokens=8, messages=USER)
    stream = client.messages.stream(model="claude-midstream", max_tokens=64, messages=USER)
    with pytest.raises(anthropic.APIStatusError) as raised, stream as events:
        for _ in events:
            pass
    assert "broke off" in str(raised.value.body)

    def failure_logged() -> bool:  # the break counts against the deployment like any stream's
        lines = [line for line in gateway.log().splitlines() if "request failed" in line]
        return any("claude-midstream" in line and "upstream_stream_interrupted" in line for line in lines)

    eventually_sync(failure_logged)


def test_count_tokens_is_exact_when_forwarded_and_says_when_estimated(
    client: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    exact = client.messages.with_raw_response.count_tokens(model="claude", messages=USER)
    assert exact.headers["x-routeiq-token-count"] == "exact"
    assert exact.parse().input_tokens == 6 + 3  # the mock's own count: words + 3
    body, headers = _forwarded(upstream)
    assert body["model"] == "claude-mock" and headers["x-api-key"] == "sk-upstream"
    estimated = client.messages.with_raw_response.count_tokens(model="claude-sonnet-4-5", messages=USER)
    assert estimated.headers["x-routeiq-token-count"] == "estimated"
    assert estimated.headers["x-routeiq-token-count-model"] == "openai/mock-toolargs"
    assert 6 <= estimated.parse().input_tokens < 30
    with pytest.raises(anthropic.BadRequestError):
        client.post("/v1/messages/count_tokens", body={"model": "auto"}, cast_to=httpx.Response)


# --- governance: the same plugins and quotas as chat completions, on both paths -------------------


@pytest.mark.parametrize("group", ["metered", "claude-metered"])
def test_quotas_settle_the_real_usage_streamed_or_not(client: anthropic.Anthropic, group: str) -> None:
    """Reserved 20, used 10, twice: 20 of 35 used, so a third reservation of 20 is refused. Settled
    to the reservation (or to nothing, as with a zero streamed usage) the second or third would
    not be."""
    first = client.messages.create(model=group, max_tokens=20, messages=USER)
    assert first.usage.output_tokens == 10
    with client.messages.stream(model=group, max_tokens=20, messages=USER) as stream:
        assert stream.get_final_message().usage.output_tokens == 10
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(model=group, max_tokens=20, messages=USER)
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


@pytest.mark.parametrize("group", ["auto", "claude"])
def test_guardrails_see_the_text_on_both_paths(
    client: anthropic.Anthropic, upstream: MockUpstream, group: str
) -> None:
    raw = client.messages.with_raw_response.create(model=group, max_tokens=8, messages=USER)
    assert "content_filter" in raw.headers["x-routeiq-applied-guardrails"]
    upstream.clear()
    banned: Any = [{"role": "user", "content": [{"type": "text", "text": "Tips for insider trading?"}]}]
    with pytest.raises(anthropic.APIStatusError) as refused:
        client.messages.create(model=group, max_tokens=8, messages=banned)
    assert refused.value.status_code == 400
    assert refused.value.body["type"] == "error"  # type: ignore[index]
    assert "content filter" in refused.value.body["error"]["message"]  # type: ignore[index]
    assert upstream.requests == []


# --- thinking and documents on translated deployments ---------------------------------------------

THINK = {"type": "enabled", "budget_tokens": 2048}


def test_thinking_on_a_reasoning_model_comes_back_as_a_thinking_block(
    client: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    raw = client.messages.with_raw_response.create(
        model="reasoner", max_tokens=4096, messages=USER, thinking=THINK
    )
    message = raw.parse()
    assert "x-routeiq-dropped" not in raw.headers
    sent = _sent(upstream)
    assert sent["reasoning_effort"] == "medium" and "thinking" not in sent  # LiteLLM's bucket for 2048
    assert sent["max_completion_tokens"] == 4096 and "max_tokens" not in sent
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking == "mock reasoning at effort medium"
    assert text.type == "text" and text.text.startswith("mock reply from mock-reasoner")


def test_streamed_thinking_comes_before_the_text(client: anthropic.Anthropic, gateway: Gateway) -> None:
    with client.messages.stream(model="reasoner", max_tokens=4096, messages=USER, thinking=THINK) as stream:
        kinds = [event.delta.type for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    assert kinds[0] == "thinking_delta" and kinds[-1] == "text_delta"
    assert kinds == sorted(kinds, key=lambda kind: kind != "thinking_delta")  # all thinking, then text
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "mock reasoning at effort medium"  # type: ignore[union-attr]
    body = {"model": "reasoner", "max_tokens": 4096, "messages": USER, "stream": True, "thinking": THINK}
    events = _events(gateway, body)
    first_text = events.index("content_block_start", 3)
    assert events[:3] == ["message_start", "ping", "content_block_start"]
    assert (
        set(events[3 : first_text - 1]) == {"content_block_delta"}
        and events[first_text - 1] == "content_block_stop"
    )
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_a_model_that_does_not_reason_drops_thinking_and_says_so(
    client: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    history = [
        *USER,
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hm", "signature": "s"},
                {"type": "text", "text": "Paris"},
            ],
        },
        {"role": "user", "content": "And Spain?"},
    ]
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=4096, messages=history, thinking=THINK
    )
    assert raw.headers["x-routeiq-dropped"] == "thinking"
    assert [block.type for block in raw.parse().content] == ["text"]
    sent = _sent(upstream)
    assert not {"thinking", "reasoning_effort"} & set(sent) and sent["max_tokens"] == 4096
    assert sent["messages"][1] == {"role": "assistant", "content": "Paris"}  # no chat upstream takes thinking
    upstream.clear()
    with client.messages.stream(model="auto", max_tokens=4096, messages=USER, thinking=THINK) as stream:
        assert stream.response.headers["x-routeiq-dropped"] == "thinking"
        assert [block.type for block in stream.get_final_message().content] == ["text"]


def test_documents_go_as_text_or_pdf_file_parts_where_the_model_reads_them(
    client: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
    }
    text = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "the notes"}}
    content = [text, pdf, {"type": "text", "text": "Summarise."}]
    client.messages.create(model="reasoner", max_tokens=64, messages=[{"role": "user", "content": content}])
    parts = _sent(upstream)["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "the notes"}
    assert parts[1] == {
        "type": "file",
        "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
    }
    with pytest.raises(anthropic.BadRequestError) as refused:  # mock-toolargs is not known to read PDFs
        client.messages.create(model="auto", max_tokens=64, messages=[{"role": "user", "content": content}])
    assert "does not read PDF documents" in refused.value.message
    client.messages.create(model="auto", max_tokens=64, messages=[{"role": "user", "content": [text]}])
