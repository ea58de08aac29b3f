"""A whole chat completion sent as an OpenAI SSE stream, for a streamed request whose answer had to
be read whole first (a cascade verifies the cheap answer before anything reaches the client)."""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"
MESSAGE_FIELDS = ("content", "refusal", "reasoning_content")


def completion_events(completion: dict[str, Any], include_usage: bool) -> bytes:
    """Per choice one chunk with the whole message and one with its finish reason, then the usage
    chunk when the client asked for it (``stream_options.include_usage``), then ``[DONE]``."""
    base = {
        "id": completion.get("id"),
        "object": "chat.completion.chunk",
        "created": completion.get("created"),
        "model": completion.get("model"),
    }
    if completion.get("system_fingerprint") is not None:
        base["system_fingerprint"] = completion["system_fingerprint"]
    chunks: list[dict[str, Any]] = []
    for position, choice in enumerate(completion.get("choices") or []):
        index = choice.get("index", position)
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": message.get("role", "assistant")}
        for field in MESSAGE_FIELDS:
            if field in message:
                delta[field] = message[field]
        if message.get("tool_calls"):
            delta["tool_calls"] = [{**call, "index": i} for i, call in enumerate(message["tool_calls"])]
        logprobs = choice.get("logprobs")
        chunks.append({**base, "choices": [{"index": index, "delta": delta, "logprobs": logprobs}]})
        finish = {"index": index, "delta": {}, "logprobs": None, "finish_reason": choice.get("finish_reason")}
        chunks.append({**base, "choices": [finish]})
    if include_usage:
        chunks.append({**base, "choices": [], "usage": completion.get("usage")})
    return b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks) + DONE
