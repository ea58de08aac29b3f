"""The Anthropic Messages <-> chat-completions translation, field by field, without a server."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from routeiq.api.errors import APIError
from routeiq.middleware.anthropic_errors import rewrite
from routeiq.translate.anthropic_response import chat_to_message
from routeiq.translate.anthropic_stream import AnthropicStream
from routeiq.translate.inbound import to_chat_body


def _chat(**body: Any) -> dict[str, Any]:
    return to_chat_body("messages", {"model": "auto", "max_tokens": 10, **body})


def test_system_blocks_stop_sequences_metadata_and_tool_choice() -> None:
    chat = _chat(
        system=[{"type": "text", "text": "One."}, {"type": "text", "text": "Two.", "cache_control": {}}],
        messages=[{"role": "user", "content": "hi"}],
        stop_sequences=["END"],
        metadata={"user_id": "u1"},
        top_k=5,
        thinking={"type": "disabled"},
        tools=[{"name": "f", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any"},
        stream=True,
    )
    assert chat == {
        "model": "auto",
        "max_tokens": 10,
        "messages": [{"role": "system", "content": "One.\nTwo."}, {"role": "user", "content": "hi"}],
        "stop": ["END"],
        "user": "u1",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_tool_results_come_first_and_errors_and_images_are_kept() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
    chat = _chat(
        messages=[
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "after"},
                    {"type": "tool_result", "tool_use_id": "t1", "is_error": True, "content": "boom"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "content": [{"type": "text", "text": "ok"}, image],
                    },
                ],
            },
        ]
    )
    assert chat["messages"] == [
        {
            "role": "assistant",
            "content": "",
            "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": "s"}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"},
        {"role": "tool", "tool_call_id": "t2", "content": "ok"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "after"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "tool_use"}]}]}, "messages.0.content.0.type"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 1.5}, "temperature"),
        (
            {
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "bash_20250124", "name": "bash"}],
            },
            "tools.0.type",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "maybe"}},
            "tool_choice.type",
        ),
    ],
)
def test_invalid_requests_name_the_clients_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(APIError) as raised:
        to_chat_body("messages", {"model": "auto", "max_tokens": 10, **body})
    assert raised.value.status == 400 and raised.value.param == param


@pytest.mark.parametrize(
    ("finish", "extra", "expected"),
    [
        ("stop", {}, ("end_turn", None)),
        ("length", {}, ("max_tokens", None)),
        ("tool_calls", {}, ("tool_use", None)),
        ("content_filter", {}, ("refusal", None)),
        ("stop", {"stop_reason": "END"}, ("stop_sequence", "END")),  # vLLM names the matched sequence
    ],
)
def test_stop_reasons(finish: str, extra: dict[str, Any], expected: tuple[str, str | None]) -> None:
    answer = {"model": "m", "choices": [{"message": {"content": "x"}, "finish_reason": finish, **extra}]}
    message = chat_to_message(answer, {"stop": ["END"]})
    assert (message["stop_reason"], message["stop_sequence"]) == expected


def test_whole_answer_with_tool_calls_and_cached_usage() -> None:
    answer = {
        "model": "m",
        "choices": [
            {
                "finish_reason": "tool_calls",
                "message": {
                    "content": "Let me look.",
                    "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": '{"a": 1}'}}],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 60},
        },
    }
    message = chat_to_message(answer, {})
    assert message["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
    ]
    assert message["usage"] == {"input_tokens": 40, "output_tokens": 7, "cache_read_input_tokens": 60}


def _chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, usage: dict[str, Any] | None = None
) -> bytes:
    chunk: dict[str, Any] = {
        "model": "m",
        "choices": [] if delta is None else [{"delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _parse(stream: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in stream.split(b"\n\n"):
        if block:
            name, data = block.split(b"\n")
            events.append((name[len(b"event: ") :].decode(), orjson.loads(data[len(b"data: ") :])))
    return events


def test_stream_text_then_two_tool_calls_split_across_reads() -> None:
    upstream = b"".join(
        [
            _chunk({"role": "assistant", "content": "Hi"}),
            _chunk({"content": " there"}),
            _chunk(
                {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]}
            ),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
            _chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}]}),
            _chunk({}, finish="tool_calls"),
            _chunk(usage={"prompt_tokens": 12, "completion_tokens": 9}),
            b"data: [DONE]\n\n",
        ]
    )
    stream = AnthropicStream({"model": "auto"}, input_estimate=11)
    out = b"".join(stream.feed(upstream[start : start + 7]) for start in range(0, len(upstream), 7))
    out += stream.finish()
    events = _parse(out)
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0][1]["message"]["usage"] == {"input_tokens": 11, "output_tokens": 0}
    assert events[6][1] == {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
    }
    assert [events[i][1]["delta"]["partial_json"] for i in (7, 8)] == ['{"a"', ": 1}"]
    assert events[10][1]["index"] == 2 and events[11][1]["index"] == 2
    assert events[13][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"input_tokens": 12, "output_tokens": 9},
    }


def test_stream_error_ends_with_an_error_event_and_nothing_after() -> None:
    stream = AnthropicStream({"model": "auto"}, input_estimate=1)
    out = stream.feed(_chunk({"content": "Hi"}))
    out += stream.feed(b'data: {"error": {"message": "broke off", "type": "api_error"}}\n\n')
    out += stream.finish()
    events = _parse(out)
    assert events[-1] == ("error", {"type": "error", "error": {"type": "api_error", "message": "broke off"}})
    assert "message_stop" not in [name for name, _ in events]


def test_stream_without_upstream_usage_estimates_instead_of_zero() -> None:
    stream = AnthropicStream({"model": "auto"}, input_estimate=3)
    out = stream.feed(_chunk({"content": "x" * 40}, finish="stop")) + stream.feed(b"data: [DONE]\n\n")
    (delta,) = [data for name, data in _parse(out) if name == "message_delta"]
    assert delta["usage"] == {"input_tokens": 3, "output_tokens": 10}


def test_error_envelope_rewrite() -> None:
    openai_error = orjson.dumps({"error": {"message": "no", "type": "x", "param": None, "code": None}})
    assert orjson.loads(rewrite(404, openai_error)) == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "no"},
    }
    anthropic_error = b'{"type":"error","error":{"type":"overloaded_error","message":"busy"}}'
    assert rewrite(529, anthropic_error) == anthropic_error
