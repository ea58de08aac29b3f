"""A chat-completions answer rewritten as an OpenAI Responses ``response`` object.

The object echoes the request's settings (``instructions``, ``tools``, ``text``...) as the API does,
always with ``store: false`` (nothing is kept) and ``previous_response_id: null``. A ``length``
finish is ``status: incomplete`` with ``incomplete_details.reason: max_output_tokens``
(``content_filter`` likewise); the upstream's reasoning (``reasoning_content`` or ``reasoning``) is
a first ``reasoning`` item with one ``reasoning_text`` part (as open-weight reasoning models' are;
no summary, nothing encrypted), the text a ``message`` item with one ``output_text`` part, each
tool call a ``function_call`` item (``call_id`` is the chat tool call's id).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from routeiq.translate.anthropic_response import obj, objects, reasoning_text

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def responses_usage(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else 0
    reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": int(cached or 0)},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(reasoning or 0)},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


class ResponseShell:
    """One response's identity and echoed settings; ``render`` fills in how far it got."""

    def __init__(self, request: Mapping[str, Any], model: str) -> None:
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.request = request
        self.model = model

    def render(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None = None,
        finish_reason: Any = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        request = self.request
        reason = (
            INCOMPLETE.get(finish_reason)
            if status == "completed" and isinstance(finish_reason, str)
            else None
        )
        if reason is not None:
            status = "incomplete"
        asked = request.get("reasoning")
        reasoning: Mapping[str, Any] = asked if isinstance(asked, dict) else {}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": error,
            "incomplete_details": {"reason": reason} if reason else None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "reasoning": {"effort": reasoning.get("effort"), "summary": None},
            "store": False,
            "temperature": request.get("temperature", 1.0),
            "text": request.get("text") or {"format": {"type": "text"}},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": request.get("tools") or [],
            "top_p": request.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "user": request.get("user"),
            "metadata": request.get("metadata") or {},
        }


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [part]}


def reasoning_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "reasoning_text", "text": text}] if status != "in_progress" else []
    return {"id": item_id, "type": "reasoning", "status": status, "summary": [], "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def chat_to_response(answer: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """The Responses object for a chat completion (its first choice)."""
    choice = next(iter(objects(answer.get("choices"))), {})
    message = obj(choice.get("message"))
    output: list[dict[str, Any]] = []
    reasoning = reasoning_text(message)
    if reasoning:
        output.append(reasoning_item(new_id("rs"), reasoning))
    text = message.get("content")
    if isinstance(text, str) and text:
        output.append(message_item(new_id("msg"), text))
    for call in objects(message.get("tool_calls")):
        function = obj(call.get("function"))
        call_id = str(call.get("id") or new_id("call"))
        arguments = function.get("arguments")
        output.append(
            function_call_item(
                new_id("fc"), call_id, str(function.get("name", "")), arguments or "{}", "completed"
            )
        )
    shell = ResponseShell(request, str(answer.get("model", request.get("model", ""))))
    usage = responses_usage(answer.get("usage"))
    return shell.render("completed", output, usage, choice.get("finish_reason"))
