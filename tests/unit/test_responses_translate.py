"""The OpenAI Responses <-> chat-completions translation, field by field, without a server."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from routeiq.api.errors import APIError
from routeiq.translate.inbound import to_chat_body
from routeiq.translate.responses_response import chat_to_response
from routeiq.translate.responses_stream import ResponsesStream


def test_items_settings_and_what_is_dropped() -> None:
    chat = to_chat_body(
        "responses",
        {
            "model": "auto",
            "instructions": "Be brief.",
            "input": [
                {
                    "type": "message",
                    "role": "developer",
                    "content": [{"type": "input_text", "text": "Rules."}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Look:"},
                        {"type": "input_image", "image_url": "https://x/y.png"},
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Calling."}],
                },
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"a":1}'},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "two"}],
                },
            ],
            "text": {"format": {"type": "json_object"}},
            "reasoning": {"effort": "low"},
            "max_output_tokens": 99,
            "store": False,
            "include": ["reasoning.encrypted_content"],
            "stream": True,
        },
    )
    assert chat == {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Rules."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Calling.",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": "two"},
        ],
        "max_tokens": 99,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "conversation": "conv_1"}, "conversation"),
        ({"input": "x", "background": True}, "background"),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
            "input.0.arguments",
        ),
        ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ],
)
def test_invalid_or_stateful_requests(body: dict[str, Any], param: str) -> None:
    with pytest.raises(APIError) as raised:
        to_chat_body("responses", {"model": "auto", **body})
    assert raised.value.status == 400 and raised.value.param == param


def test_a_length_finish_is_incomplete_with_the_reason() -> None:
    answer = {
        "model": "m",
        "choices": [{"message": {"content": "cut"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5},
    }
    response = chat_to_response(answer, {"model": "auto", "max_output_tokens": 5})
    assert response["status"] == "incomplete" and response["incomplete_details"] == {
        "reason": "max_output_tokens"
    }
    assert response["usage"]["total_tokens"] == 8 and response["output"][0]["content"][0]["text"] == "cut"


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


def _events(out: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(block.split(b"\ndata: ")[1]) for block in out.split(b"\n\n") if block]


def test_stream_text_then_a_tool_call_with_consistent_ids_and_sequence_numbers() -> None:
    upstream = b"".join(
        [
            _chunk({"role": "assistant", "content": "Let me"}),
            _chunk({"content": " check."}),
            _chunk(
                {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]}
            ),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            _chunk({}, finish="tool_calls"),
            _chunk(usage={"prompt_tokens": 4, "completion_tokens": 6}),
            b"data: [DONE]\n\n",
        ]
    )
    stream = ResponsesStream({"model": "auto"}, {"model": "auto"}, input_estimate=1)
    out = (
        b"".join(stream.feed(upstream[start : start + 5]) for start in range(0, len(upstream), 5))
        + stream.finish()
    )
    events = _events(out)
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    completed = events[-1]["response"]
    assert completed["id"] == events[0]["response"]["id"]
    message, call = completed["output"]
    assert (
        message["id"] == events[2]["item"]["id"] == events[4]["item_id"]
        and message["content"][0]["text"] == "Let me check."
    )
    assert (call["call_id"], call["name"], call["arguments"], call["status"]) == (
        "c1",
        "f",
        '{"a":1}',
        "completed",
    )
    assert events[12]["arguments"] == '{"a":1}' and events[9]["output_index"] == 1
    assert completed["usage"]["input_tokens"] == 4 and completed["usage"]["output_tokens"] == 6


def test_stream_failure_ends_with_error_then_response_failed() -> None:
    stream = ResponsesStream({"model": "auto"}, {"model": "auto"}, input_estimate=2)
    out = stream.feed(_chunk({"content": "Hi"}))
    error = {"error": {"message": "broke off", "type": "api_error", "code": "upstream_stream_interrupted"}}
    out += stream.feed(b"data: " + orjson.dumps(error) + b"\n\n")
    out += stream.finish()
    events = _events(out)
    assert [event["type"] for event in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["code"] == "upstream_stream_interrupted"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {
        "code": "upstream_stream_interrupted",
        "message": "broke off",
    }
    assert failed["output"][0]["status"] == "incomplete"


def test_which_deployments_serve_the_responses_api_themselves() -> None:
    from routeiq.routing.deployments import DeploymentTable
    from routeiq.settings import DeploymentConfig

    def entry(model: str, api_base: str | None, **info: Any) -> DeploymentConfig:
        params = {"model": model, "api_base": api_base, "api_key": "k"}
        return DeploymentConfig.model_validate(
            {"model_name": "g", "litellm_params": params, "model_info": info}
        )

    table = DeploymentTable(
        [
            entry("openai/gpt-5", None),  # api.openai.com
            entry("openai/local", "http://vllm:8000/v1"),
            entry("openai/local", "http://vllm:8000/v1", responses_api=True),
            entry("openai/gpt-5", None, responses_api=False),
            entry("anthropic/claude", None, responses_api=True),  # not an OpenAI-wire deployment
        ]
    )
    assert [deployment.speaks_responses for deployment in table.group("g")] == [
        True,
        False,
        True,
        False,
        False,
    ]
