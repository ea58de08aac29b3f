"""Messages ``thinking`` and ``document`` blocks in the chat translation, fitted to each deployment
(``chat_targets``), and reasoning in chat answers back as thinking blocks, whole and streamed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from routeiq.executors.base import UpstreamError
from routeiq.routing.deployments import Deployment
from routeiq.translate.anthropic_response import chat_to_message
from routeiq.translate.anthropic_stream import AnthropicStream
from routeiq.translate.chat_targets import ChatExtras, fit_chat_body
from routeiq.translate.inbound import to_chat_body

THINKING = {"type": "enabled", "budget_tokens": 2048}
HISTORY = [
    {"role": "user", "content": "hi"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xyz"},
            {"type": "text", "text": "hello"},
        ],
    },
    {"role": "user", "content": "more"},
]
OPENAI = Deployment(
    id="d", group="g", litellm_model="openai/o3", upstream_model="o3", provider="openai",
    api_base="http://x", weight=1, timeout=None, tier=None, cost_per_token=None,
    input_cost_per_token=None, output_cost_per_token=None, max_input_tokens=None,
    supports_vision=None, supports_tools=None, speaks_openai=True, upstream_headers={},
)  # fmt: skip


def _chat(**body: Any) -> dict[str, Any]:
    return to_chat_body("messages", {"model": "auto", "max_tokens": 4096, **body})


def _fit(chat: dict[str, Any], deployment: Deployment) -> tuple[dict[str, Any], tuple[str, ...]]:
    return fit_chat_body(chat, ChatExtras.of(chat), deployment)


def test_thinking_becomes_reasoning_effort_for_a_reasoning_model_and_is_dropped_elsewhere() -> None:
    chat = _chat(messages=HISTORY, thinking=THINKING)
    assert chat["thinking"] == THINKING
    assert chat["messages"][1]["thinking_blocks"] == [
        {"type": "thinking", "thinking": "hm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "xyz"},
    ]
    fitted, dropped = _fit(chat, replace(OPENAI, supports_reasoning=True))
    assert dropped == () and fitted["reasoning_effort"] == "medium" and "thinking" not in fitted
    assert fitted["max_completion_tokens"] == 4096 and "max_tokens" not in fitted  # o-series' name
    assert all("thinking_blocks" not in message for message in fitted["messages"])
    assert chat["messages"][1]["thinking_blocks"]  # the call's own body is left as it was
    fitted, dropped = _fit(chat, OPENAI)  # not known to reason
    assert dropped == ("thinking",)
    assert "thinking" not in fitted and "reasoning_effort" not in fitted and fitted["max_tokens"] == 4096


def test_a_claude_model_served_by_litellm_keeps_the_exact_budget_and_its_thinking_history() -> None:
    chat = _chat(messages=HISTORY, thinking=THINKING)
    claude = replace(
        OPENAI, provider="anthropic", upstream_model="claude-x", speaks_openai=False, supports_reasoning=True
    )
    fitted, dropped = _fit(chat, claude)
    assert dropped == () and fitted["thinking"] == THINKING and "reasoning_effort" not in fitted
    assert fitted["messages"][1]["thinking_blocks"] == chat["messages"][1]["thinking_blocks"]


@pytest.mark.parametrize(
    ("thinking", "param"),
    [
        ({"type": "enabled"}, "thinking.budget_tokens"),
        ({"type": "enabled", "budget_tokens": "1024"}, "thinking.budget_tokens"),
        ({"type": "sometimes"}, "thinking.type"),
    ],
)
def test_invalid_thinking_is_a_400(thinking: dict[str, Any], param: str) -> None:
    with pytest.raises(Exception) as raised:
        _chat(messages=HISTORY, thinking=thinking)
    assert getattr(raised.value, "param", None) == param


def test_documents_become_text_or_a_pdf_file_part() -> None:
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}
    chat = _chat(
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                    },
                    {"type": "document", "source": pdf, "title": "a.pdf", "citations": {"enabled": True}},
                    {"type": "text", "text": "summarise"},
                ],
            }
        ]
    )
    assert chat["messages"][0]["content"] == [
        {"type": "text", "text": "notes"},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
        {"type": "text", "text": "summarise"},
    ]
    fitted, _ = _fit(chat, replace(OPENAI, supports_pdf_input=True))
    assert fitted is chat or fitted == chat
    with pytest.raises(UpstreamError) as refused:
        _fit(chat, OPENAI)
    assert refused.value.status == 400 and not refused.value.retryable and "PDF" in refused.value.message
    with pytest.raises(Exception) as by_url:
        _chat(
            messages=[
                {"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "u"}}]}
            ]
        )
    assert getattr(by_url.value, "param", None) == "messages.0.content.0.source.type"


def test_litellm_thinking_blocks_with_signatures_make_the_whole_answer() -> None:
    message = {
        "content": "hi",
        "reasoning_content": "hm",
        "thinking_blocks": [
            {"type": "thinking", "thinking": "hm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xyz"},
        ],
    }
    answer = chat_to_message({"choices": [{"message": message, "finish_reason": "stop"}]}, {"model": "m"})
    assert answer["content"] == [
        {"type": "thinking", "thinking": "hm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "xyz"},
        {"type": "text", "text": "hi"},
    ]
    vllm = {"choices": [{"message": {"content": "hi", "reasoning": "r"}, "finish_reason": "stop"}]}
    assert chat_to_message(vllm, {})["content"][0] == {"type": "thinking", "thinking": "r", "signature": ""}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"model": "m", "choices": [{"delta": delta, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def test_streamed_reasoning_is_a_thinking_block_with_its_signature_before_the_text() -> None:
    stream = AnthropicStream({"model": "m"}, 5)
    out = stream.feed(
        b"".join(
            [
                _chunk(
                    {"reasoning_content": "I ", "thinking_blocks": [{"type": "thinking", "thinking": "I "}]}
                ),
                _chunk({"reasoning_content": "think"}),
                _chunk(
                    {"reasoning_content": "", "thinking_blocks": [{"type": "thinking", "signature": "sig"}]}
                ),
                _chunk({"content": "Paris"}, "stop"),
                b"data: [DONE]\n\n",
            ]
        )
    )
    events = [orjson.loads(line[6:]) for line in out.split(b"\n") if line.startswith(b"data: ")]
    shapes = [(e["type"], (e.get("content_block") or e.get("delta") or {}).get("type")) for e in events]
    assert shapes == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", "thinking"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", None),
        ("content_block_start", "text"),
        ("content_block_delta", "text_delta"),
        ("content_block_stop", None),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[5]["delta"]["signature"] == "sig" and events[7]["index"] == 1
