"""A streamed chat completion rewritten, chunk by chunk, as Anthropic's Messages event stream.

The sequence is the documented one: ``message_start`` (``usage.input_tokens`` is the prompt's
estimate: a chat upstream reports usage only at the end), a ``ping``, then per content block
``content_block_start``, its deltas (``text_delta``, ``thinking_delta`` and ``signature_delta``,
``input_json_delta`` with each fragment of a tool call's arguments as it arrives) and
``content_block_stop``; reasoning (``reasoning_content`` or ``reasoning``, signatures and redacted
blocks from LiteLLM's ``thinking_blocks``) opens a ``thinking`` block before the text; last
``message_delta`` with the stop reason and the upstream's real usage (input and output tokens: the
SDKs take its counts as totals) and ``message_stop``. A stream that fails part way (the executors end
it with an error event) ends with ``event: error`` instead of ``message_delta``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from routeiq.translate.anthropic_response import (
    anthropic_usage,
    message_id,
    obj,
    objects,
    reasoning_text,
    stop_reason,
    stops_of,
)
from routeiq.translate.chat_events import EVENT_END, ChatEventReader

DONE = b"[DONE]"
THINKING_BLOCK = {"type": "thinking", "thinking": "", "signature": ""}
ERROR_TYPES = {429: "rate_limit_error", 504: "timeout_error"}


def sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + EVENT_END


def error_event(error_type: str, message: str) -> bytes:
    return sse("error", {"type": "error", "error": {"type": error_type, "message": message}})


class AnthropicStream(ChatEventReader):
    """Feed it the chat stream's bytes in order; it returns the Anthropic events they complete."""

    def __init__(self, chat_body: Mapping[str, Any], input_estimate: int) -> None:
        self._stops = stops_of(chat_body)
        self._model = str(chat_body.get("model", ""))
        self._input_estimate = input_estimate
        self._buffer = b""
        self._started = False
        self._finished = False  # message_stop or error sent: nothing more goes out
        self._open: str | None = None  # the open block's kind: text, thinking or tool_use
        self._blocks = 0  # blocks started so far (the next block's index)
        self._tool_blocks: dict[int, int] = {}  # chat tool-call index -> block index
        self._finish_reason: Any = None
        self._choice: dict[str, Any] = {}
        self._usage: dict[str, Any] | None = None
        self.saw_tool_call = False
        self._streamed_chars = 0

    def finish(self) -> bytes:
        """The closing events, if the stream has not ended yet (an upstream that sent no [DONE])."""
        if self._finished:
            return b""
        return self._close()

    def _on_data(self, data: bytes) -> bytes:
        if data == DONE:
            return self._close()
        chunk = orjson.loads(data)
        if not isinstance(chunk, dict):
            return b""
        error = chunk.get("error")
        if error is not None:
            self._finished = True
            message = error.get("message", "the upstream failed") if isinstance(error, dict) else str(error)
            return error_event("api_error", str(message))
        out = [] if self._started else [self._message_start(chunk)]
        self._started = True
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = objects(chunk.get("choices"))
        if choices:
            out.append(self._on_choice(choices[0]))
        return b"".join(out)

    def _message_start(self, chunk: dict[str, Any]) -> bytes:
        self._model = str(chunk.get("model") or self._model)
        message: dict[str, Any] = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_estimate, "output_tokens": 0},
        }
        return sse("message_start", {"type": "message_start", "message": message}) + sse(
            "ping", {"type": "ping"}
        )

    def _on_choice(self, choice: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        delta = obj(choice.get("delta"))
        reasoning = reasoning_text(delta)
        if reasoning:
            out.append(self._ensure_block("thinking", dict(THINKING_BLOCK)))
            out.append(self._delta({"type": "thinking_delta", "thinking": reasoning}))
            self._streamed_chars += len(reasoning)
        if "thinking_blocks" in delta:
            out.append(self._on_thinking_blocks(objects(delta["thinking_blocks"])))
        text = delta.get("content")
        if isinstance(text, str) and text:
            out.append(self._ensure_block("text", {"type": "text", "text": ""}))
            out.append(self._delta({"type": "text_delta", "text": text}))
            self._streamed_chars += len(text)
        for call in objects(delta.get("tool_calls")):
            out.append(self._on_tool_call(call))
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
            self._choice = choice
        return b"".join(out)

    def _on_thinking_blocks(self, blocks: list[dict[str, Any]]) -> bytes:
        """LiteLLM's thinking blocks: their text came as ``reasoning_content``; what is left is a
        block's signature (which closes it) and redacted blocks (whole, in one event)."""
        out: list[bytes] = []
        for block in blocks:
            signature = block.get("signature")
            if block.get("type") == "thinking" and isinstance(signature, str) and signature:
                out.append(self._ensure_block("thinking", dict(THINKING_BLOCK)))
                out.append(self._delta({"type": "signature_delta", "signature": signature}))
                self._open = "signed thinking"  # more reasoning after a signature is a new block
            elif block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
                out.append(self._stop_block())
                redacted = {"type": "redacted_thinking", "data": block["data"]}
                out.append(self._start_block("redacted_thinking", redacted))
        return b"".join(out)

    def _on_tool_call(self, call: dict[str, Any]) -> bytes:
        self.saw_tool_call = True
        out: list[bytes] = []
        raw_index = call.get("index")
        index = raw_index if isinstance(raw_index, int) else 0
        function = obj(call.get("function"))
        if index not in self._tool_blocks:
            out.append(self._stop_block())
            self._tool_blocks[index] = self._blocks
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": {},
            }
            out.append(self._start_block("tool_use", block))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._streamed_chars += len(arguments)
            payload = {"type": "input_json_delta", "partial_json": arguments}
            event = {"type": "content_block_delta", "index": self._tool_blocks[index], "delta": payload}
            out.append(sse("content_block_delta", event))
        return b"".join(out)

    def _ensure_block(self, kind: str, block: dict[str, Any]) -> bytes:
        if self._open == kind:
            return b""
        return self._stop_block() + self._start_block(kind, block)

    def _start_block(self, kind: str, block: dict[str, Any]) -> bytes:
        self._open = kind
        event = {"type": "content_block_start", "index": self._blocks, "content_block": block}
        self._blocks += 1
        return sse("content_block_start", event)

    def _stop_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return sse("content_block_stop", {"type": "content_block_stop", "index": self._blocks - 1})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return sse(
            "content_block_delta", {"type": "content_block_delta", "index": self._blocks - 1, "delta": delta}
        )

    def _close(self) -> bytes:
        self._finished = True
        out = [] if self._started else [self._message_start({})]
        self._started = True
        out.append(self._stop_block())
        reason, sequence = stop_reason(self._finish_reason, self._choice, self._stops)
        if reason == "end_turn" and self.saw_tool_call:
            reason = "tool_use"
        if self._usage is not None:
            usage = anthropic_usage(self._usage)
        else:  # an upstream that never reported usage: the streamed text's estimate, never a zero
            usage = {
                "input_tokens": self._input_estimate,
                "output_tokens": math.ceil(self._streamed_chars / 4),
            }
        event = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": usage,
        }
        out.append(sse("message_delta", event))
        out.append(sse("message_stop", {"type": "message_stop"}))
        return b"".join(out)
