"""Whatever JSON a client sends to /v1/messages or /v1/responses, the translation answers with a chat
body or a 400 naming a field: never another exception (a 500). Hypothesis builds bodies from the
fields and block types the translators read, filled with any JSON (hypothesis comes with
schemathesis); the chat translation of the streams gets any chunk an upstream might send."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from routeiq.api.errors import APIError
from routeiq.translate.anthropic_stream import AnthropicStream
from routeiq.translate.inbound import to_chat_body
from routeiq.translate.responses_stream import ResponsesStream

SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=5)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
WORDS = [
    "type",
    "text",
    "role",
    "content",
    "source",
    "media_type",
    "data",
    "url",
    "id",
    "name",
    "input",
    "tool_use_id",
    "is_error",
    "call_id",
    "arguments",
    "output",
    "image_url",
    "format",
    "schema",
    "effort",
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "image",
    "tool_result",
    "tool_use",
    "thinking",
    "redacted_thinking",
    "signature",
    "enabled",
    "budget_tokens",
    "document",
    "content",
    "text",
    "application/pdf",
    "base64",
    "message",
    "function_call",
    "function_call_output",
    "input_text",
    "input_image",
    "output_text",
    "reasoning",
    "function",
    "auto",
    "any",
    "none",
    "json_schema",
    "image/png",
]
KEYED = st.recursive(
    SCALARS | st.sampled_from(WORDS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(WORDS), inner, max_size=4),
    max_leaves=20,
)
MESSAGES_FIELDS = [
    "messages",
    "system",
    "tools",
    "tool_choice",
    "stop_sequences",
    "metadata",
    "temperature",
    "top_p",
    "stream",
    "thinking",
]
RESPONSES_FIELDS = [
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "reasoning",
    "max_output_tokens",
    "temperature",
    "top_p",
    "stream",
    "previous_response_id",
    "user",
]


def _translates_or_refuses(kind: Any, body: dict[str, Any]) -> None:
    try:
        chat = to_chat_body(kind, body)
    except APIError as error:
        assert error.status == 400 and error.param
        return
    assert isinstance(chat["messages"], list) and chat["messages"]


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.fixed_dictionaries(
        {"model": st.just("m"), "max_tokens": st.just(5)}, optional={name: KEYED for name in MESSAGES_FIELDS}
    )
)
def test_messages_bodies(body: dict[str, Any]) -> None:
    _translates_or_refuses("messages", body)


@settings(max_examples=300, deadline=None, database=None)
@given(st.fixed_dictionaries({"model": st.just("m")}, optional={name: KEYED for name in RESPONSES_FIELDS}))
def test_responses_bodies(body: dict[str, Any]) -> None:
    _translates_or_refuses("responses", body)


TOOL_CALL = st.fixed_dictionaries(
    {},
    optional={
        "index": JSON,
        "id": JSON,
        "function": JSON | st.fixed_dictionaries({"name": JSON, "arguments": JSON}),
    },
)
DELTA = JSON | st.fixed_dictionaries(
    {},
    optional={
        "content": JSON,
        "reasoning_content": JSON,
        "tool_calls": JSON | st.lists(TOOL_CALL, max_size=2),
    },
)
CHUNK = JSON | st.fixed_dictionaries(
    {},
    optional={
        "model": JSON,
        "usage": JSON,
        "choices": JSON
        | st.lists(st.fixed_dictionaries({}, optional={"delta": DELTA, "finish_reason": JSON}), max_size=2),
    },
)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(CHUNK, max_size=6))
def test_streams_take_any_chunks(chunks: list[dict[str, Any]]) -> None:
    data = b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks) + b"data: [DONE]\n\n"
    for stream in (AnthropicStream({"model": "m"}, 1), ResponsesStream({}, {"model": "m"}, 1)):
        out = stream.feed(data) + stream.finish()
        assert out.endswith(b"\n\n")
