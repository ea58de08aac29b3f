"""A streamed chat completion rewritten, chunk by chunk, as the Responses API's event stream.

The documented order, every event with the next ``sequence_number`` and the same ids throughout:
``response.created``, ``response.in_progress``; per output item ``response.output_item.added``
(then for text ``response.content_part.added``, ``response.output_text.delta``...,
``response.output_text.done``, ``response.content_part.done``; for reasoning, a ``reasoning`` item
first, ``response.reasoning_text.delta``..., ``response.reasoning_text.done``; for a tool call
``response.function_call_arguments.delta``..., ``.done``) and ``response.output_item.done``; last
``response.completed`` (or ``response.incomplete`` after a ``length`` finish) with every item and
the upstream's usage. A stream that fails part way ends with ``error`` and ``response.failed``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from routeiq.translate.anthropic_response import obj, objects, reasoning_text
from routeiq.translate.chat_events import EVENT_END, ChatEventReader
from routeiq.translate.responses_response import (
    ResponseShell,
    function_call_item,
    message_item,
    new_id,
    reasoning_item,
    responses_usage,
)

DONE = b"[DONE]"


class _Item:
    """An output item being streamed: a message (text), reasoning (its text) or a function call
    (arguments)."""

    def __init__(self, kind: str, index: int, call_id: str = "", name: str = "") -> None:
        self.kind = kind
        self.index = index
        self.id = new_id({"message": "msg", "reasoning": "rs"}.get(kind, "fc"))
        self.call_id = call_id
        self.name = name
        self.text = ""  # the message's text, or the call's arguments so far

    def render(self, status: str) -> dict[str, Any]:
        if self.kind == "message":
            item = message_item(self.id, self.text, status)
            if status == "in_progress":
                item["content"] = []
            return item
        if self.kind == "reasoning":
            return reasoning_item(self.id, self.text, status)
        return function_call_item(self.id, self.call_id, self.name, self.text, status)


class ResponsesStream(ChatEventReader):
    """Feed it the chat stream's bytes in order; it returns the Responses events they complete."""

    def __init__(self, request: Mapping[str, Any], chat_body: Mapping[str, Any], input_estimate: int) -> None:
        self._shell = ResponseShell(request, str(chat_body.get("model", "")))
        self._input_estimate = input_estimate
        self._buffer = b""
        self._sequence = 0
        self._started = False
        self._finished = False
        self._items: list[_Item] = []
        self._open: _Item | None = None
        self._tools: dict[int, _Item] = {}  # chat tool-call index -> its item
        self._finish_reason: Any = None
        self._usage: dict[str, Any] | None = None

    def finish(self) -> bytes:
        """The closing events, if the stream has not ended yet."""
        return b"" if self._finished else self._complete()

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + EVENT_END

    def _start(self, model: Any) -> bytes:
        self._started = True
        if isinstance(model, str) and model:
            self._shell.model = model
        response = self._shell.render("in_progress", [])
        return self._event("response.created", response=response) + self._event(
            "response.in_progress", response=response
        )

    def _on_data(self, data: bytes) -> bytes:
        if data == DONE:
            return self._complete()
        chunk = orjson.loads(data)
        if not isinstance(chunk, dict):
            return b""
        out = [] if self._started else [self._start(chunk.get("model"))]
        if chunk.get("error") is not None:
            out.append(self._fail(chunk["error"]))
            return b"".join(out)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = objects(chunk.get("choices"))
        if choices:
            out.append(self._on_choice(choices[0]))
        return b"".join(out)

    def _on_choice(self, choice: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        delta = obj(choice.get("delta"))
        reasoning = reasoning_text(delta)
        if reasoning:
            out.append(self._on_text("reasoning", "response.reasoning_text.delta", reasoning))
        text = delta.get("content")
        if isinstance(text, str) and text:
            out.append(self._on_text("message", "response.output_text.delta", text))
        for call in objects(delta.get("tool_calls")):
            out.append(self._on_tool_call(call))
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
        return b"".join(out)

    def _on_text(self, kind: str, event: str, text: str) -> bytes:
        """More text for the open item of ``kind`` (opened first if another kind is open)."""
        out = []
        if self._open is None or self._open.kind != kind:
            out.append(self._open_item(_Item(kind, len(self._items))))
        item = self._require_open()
        item.text += text
        fields = {"item_id": item.id, "output_index": item.index, "content_index": 0, "delta": text}
        out.append(self._event(event, **fields, **({"logprobs": []} if kind == "message" else {})))
        return b"".join(out)

    def _require_open(self) -> _Item:
        assert self._open is not None  # opened just before
        return self._open

    def _on_tool_call(self, call: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        raw_index = call.get("index")
        index = raw_index if isinstance(raw_index, int) else 0
        function = obj(call.get("function"))
        item = self._tools.get(index)
        if item is None:
            call_id = str(call.get("id") or new_id("call"))
            item = _Item("function_call", len(self._items), call_id, str(function.get("name") or ""))
            self._tools[index] = item
            out.append(self._open_item(item))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.text += arguments
            out.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item.id,
                    output_index=item.index,
                    delta=arguments,
                )
            )
        return b"".join(out)

    def _open_item(self, item: _Item) -> bytes:
        out = [self._close_item()]
        self._items.append(item)
        self._open = item
        out.append(
            self._event(
                "response.output_item.added", output_index=item.index, item=item.render("in_progress")
            )
        )
        if item.kind == "message":
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out.append(
                self._event(
                    "response.content_part.added",
                    item_id=item.id,
                    output_index=item.index,
                    content_index=0,
                    part=part,
                )
            )
        return b"".join(out)

    def _close_item(self) -> bytes:
        item, self._open = self._open, None
        if item is None:
            return b""
        out: list[bytes] = []
        where = {"item_id": item.id, "output_index": item.index}
        if item.kind == "message":
            part = {"type": "output_text", "text": item.text, "annotations": [], "logprobs": []}
            out.append(
                self._event(
                    "response.output_text.done", **where, content_index=0, text=item.text, logprobs=[]
                )
            )
            out.append(self._event("response.content_part.done", **where, content_index=0, part=part))
        elif item.kind == "reasoning":
            out.append(self._event("response.reasoning_text.done", **where, content_index=0, text=item.text))
        else:
            out.append(
                self._event(
                    "response.function_call_arguments.done", **where, name=item.name, arguments=item.text
                )
            )
        out.append(
            self._event("response.output_item.done", output_index=item.index, item=item.render("completed"))
        )
        return b"".join(out)

    def _usage_or_estimate(self) -> dict[str, Any]:
        if self._usage is not None:
            return responses_usage(self._usage)
        # An upstream that never reported usage: estimates, never zeros.
        output = math.ceil(sum(len(item.text) for item in self._items) / 4)
        return responses_usage({"prompt_tokens": self._input_estimate, "completion_tokens": output})

    def _complete(self) -> bytes:
        self._finished = True
        out = [] if self._started else [self._start(None)]
        out.append(self._close_item())
        output = [item.render("completed") for item in self._items]
        response = self._shell.render("completed", output, self._usage_or_estimate(), self._finish_reason)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        out.append(self._event(kind, response=response))
        return b"".join(out)

    def _fail(self, error: Any) -> bytes:
        self._finished = True
        message = str(error.get("message", "the upstream failed") if isinstance(error, dict) else error)
        code = str(error.get("code") or "server_error") if isinstance(error, dict) else "server_error"
        output = [item.render("incomplete") for item in self._items]
        failure = {"code": code, "message": message}
        response = self._shell.render("failed", output, self._usage_or_estimate(), error=failure)
        return self._event("error", code=code, message=message, param=None) + self._event(
            "response.failed", response=response
        )
