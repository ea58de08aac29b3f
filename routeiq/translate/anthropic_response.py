"""A chat-completions answer rewritten as an Anthropic Messages ``message``.

Stop reasons: ``length`` -> ``max_tokens``, ``tool_calls`` -> ``tool_use``, ``content_filter`` ->
``refusal``, and ``stop`` -> ``stop_sequence`` when the upstream names which of the request's stop
sequences matched (vLLM's ``stop_reason``), else ``end_turn``: OpenAI itself does not say whether a
stop sequence or the model ended the turn.

Reasoning: the upstream's ``thinking_blocks`` (LiteLLM's, from a Claude model: signatures and
redacted blocks included) become the same ``thinking``/``redacted_thinking`` blocks; failing them,
``reasoning_content`` (DeepSeek, vLLM, LiteLLM's other providers) or ``reasoning`` (newer vLLM,
OpenRouter) becomes one ``thinking`` block with an empty signature. Either comes first, as
Anthropic's do.

Usage: Anthropic's ``input_tokens`` excludes cached prompt tokens, which it reports apart
(``cache_read_input_tokens``); chat ``prompt_tokens`` includes them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import orjson

STOP_REASONS = {"length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use"}
STOP_REASONS["content_filter"] = "refusal"


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: an upstream's odd shapes read as absent."""
    return value if isinstance(value, dict) else {}


def objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects in ``value`` if it is an array, else none."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def stop_reason(finish_reason: Any, choice: dict[str, Any], stops: list[str]) -> tuple[str, str | None]:
    """(``stop_reason``, ``stop_sequence``) for a chat choice's ``finish_reason``."""
    if isinstance(finish_reason, str) and finish_reason in STOP_REASONS:
        return STOP_REASONS[finish_reason], None
    matched = choice.get("stop_reason")  # vLLM and compatible servers: the stop string that matched
    if isinstance(matched, str) and matched in stops:
        return "stop_sequence", matched
    return "end_turn", None


def anthropic_usage(usage: dict[str, Any] | None) -> dict[str, int]:
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    details = usage.get("prompt_tokens_details")
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    result = {"input_tokens": prompt - cached, "output_tokens": int(usage.get("completion_tokens") or 0)}
    if cached:
        result["cache_read_input_tokens"] = cached
    return result


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as the ``input`` object (``{}`` for none; non-object JSON is wrapped)."""
    if not arguments:
        return {}
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str | bytes) else arguments
    except orjson.JSONDecodeError:
        return {"arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def stops_of(chat_body: Mapping[str, Any]) -> list[str]:
    stop = chat_body.get("stop")
    if isinstance(stop, str):
        return [stop]
    return [item for item in stop if isinstance(item, str)] if isinstance(stop, list) else []


def reasoning_text(holder: Mapping[str, Any]) -> str:
    """A chat message's (or stream delta's) reasoning text, under either name upstreams use."""
    for name in ("reasoning_content", "reasoning"):
        text = holder.get(name)
        if isinstance(text, str) and text:
            return text
    return ""


def thinking_blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Anthropic thinking blocks of a chat answer's message (see the module's notes)."""
    blocks: list[dict[str, Any]] = []
    for block in objects(message.get("thinking_blocks")):
        if block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
            blocks.append({"type": "redacted_thinking", "data": block["data"]})
        elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
            signature = block.get("signature")
            text = block["thinking"]
            blocks.append({"type": "thinking", "thinking": text, "signature": signature or ""})
    if blocks:
        return blocks
    reasoning = reasoning_text(message)
    return [{"type": "thinking", "thinking": reasoning, "signature": ""}] if reasoning else []


def chat_to_message(answer: dict[str, Any], chat_body: Mapping[str, Any]) -> dict[str, Any]:
    """The Messages response for a chat completion (its first choice)."""
    choice = next(iter(objects(answer.get("choices"))), {})
    message = obj(choice.get("message"))
    content = thinking_blocks(message)
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in objects(message.get("tool_calls")):
        function = obj(call.get("function"))
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "toolu_" + secrets.token_hex(12),
                "name": function.get("name", ""),
                "input": tool_input(function.get("arguments")),
            }
        )
    reason, sequence = stop_reason(choice.get("finish_reason"), choice, stops_of(chat_body))
    if reason == "end_turn" and message.get("tool_calls"):  # upstreams that say "stop" after calling
        reason = "tool_use"
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": answer.get("model", chat_body.get("model")),
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": anthropic_usage(answer.get("usage")),
    }
