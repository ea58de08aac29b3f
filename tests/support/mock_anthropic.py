"""The mock upstream's Anthropic side: ``POST /v1/messages`` and ``/v1/messages/count_tokens`` as
Anthropic serves them, for deployments that speak the Anthropic wire (``anthropic/...``).

Served by the same server as the OpenAI-compatible mock (``tests.support.mock_upstream``), with its
request recording and model-name behaviours: ``fail429``/``fail500``/``fail400`` answer that status
in Anthropic's error envelope, ``midstream`` drops a stream after its third event. Requests must
carry ``x-api-key: sk-upstream`` (the deployment's key) and an ``anthropic-version``.

The answer: ``mock reply from <model>: <last user text>`` or, when tools are offered (and
``tool_choice`` is not ``none``), a ``tool_use`` of the first (or chosen) tool whose input fills each
schema property with ``"mock-<property>"``. Usage counts words; ``count_tokens`` answers words + 3, so
a test can tell a forwarded count from an estimate.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import orjson
from aiohttp import web

from tests.support.mock_upstream import Behaviour, _state

API_KEY = "sk-upstream"


def _error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    texts = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block, dict) and block.get("type") == "tool_result":
            texts.extend(_texts(block.get("content")))
    return texts


def _words(body: dict[str, Any]) -> int:
    texts = _texts(body.get("system"))
    for message in body.get("messages") or []:
        texts.extend(_texts(message.get("content")))
    return sum(len(text.split()) for text in texts)


def _tool_use(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if not tools or choice.get("type") == "none":
        return None
    tool = next((tool for tool in tools if tool.get("name") == choice.get("name")), tools[0])
    properties = (tool.get("input_schema") or {}).get("properties") or {}
    return {
        "type": "tool_use",
        "id": "toolu_" + secrets.token_hex(8),
        "name": tool["name"],
        "input": {name: f"mock-{name}" for name in properties},
    }


async def _checked(request: web.Request) -> tuple[dict[str, Any], Behaviour] | web.Response:
    if request.headers.get("x-api-key") != API_KEY:
        return _error(401, "authentication_error", "invalid x-api-key (mock)")
    if not request.headers.get("anthropic-version"):
        return _error(400, "invalid_request_error", "anthropic-version: header is required (mock)")
    body = orjson.loads(await request.read())
    behaviour = _state(request).behaviour_for(str(body.get("model", "")))
    if behaviour.fail_status == 429:
        return _error(429, "rate_limit_error", "rate limited (mock)", {"retry-after": "1"})
    if behaviour.fail_status is not None:
        kind = "invalid_request_error" if behaviour.fail_status == 400 else "api_error"
        return _error(behaviour.fail_status, kind, f"failed with {behaviour.fail_status} (mock)")
    return body, behaviour


def _message(body: dict[str, Any]) -> dict[str, Any]:
    tool_use = _tool_use(body)
    last = body["messages"][-1]
    text = f"mock reply from {body['model']}: {' '.join(_texts(last.get('content')))[:40]}"
    content = [tool_use] if tool_use else [{"type": "text", "text": text}]
    output = 1 if tool_use else len(text.split())
    return {
        "id": "msg_" + secrets.token_hex(8),
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": "tool_use" if tool_use else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": _words(body), "output_tokens": output},
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"


def _events(message: dict[str, Any]) -> list[bytes]:
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    events = [_event("message_start", {"message": start}), _event("ping", {})]
    block = message["content"][0]
    if block["type"] == "text":
        opening: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in re.findall(r"\S+\s*", block["text"])]
    else:
        opening = {**block, "input": {}}
        arguments = orjson.dumps(block["input"]).decode()
        deltas = [
            {"type": "input_json_delta", "partial_json": arguments[i : i + 4]}
            for i in range(0, len(arguments), 4)
        ]
    events.append(_event("content_block_start", {"index": 0, "content_block": opening}))
    events += [_event("content_block_delta", {"index": 0, "delta": delta}) for delta in deltas]
    events.append(_event("content_block_stop", {"index": 0}))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(
        _event(
            "message_delta", {"delta": stop, "usage": {"output_tokens": message["usage"]["output_tokens"]}}
        )
    )
    events.append(_event("message_stop", {}))
    return events


async def _handle_messages(request: web.Request) -> web.StreamResponse:
    checked = await _checked(request)
    if isinstance(checked, web.Response):
        return checked
    body, behaviour = checked
    message = _message(body)
    if not body.get("stream"):
        return web.Response(body=orjson.dumps(message), content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for index, event in enumerate(_events(message)):
        if behaviour.midstream and index == 3:
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write(event)
    await response.write_eof()
    return response


async def _handle_count_tokens(request: web.Request) -> web.StreamResponse:
    checked = await _checked(request)
    if isinstance(checked, web.Response):
        return checked
    body, _ = checked
    return web.Response(
        body=orjson.dumps({"input_tokens": _words(body) + 3}), content_type="application/json"
    )


def anthropic_routes() -> list[web.RouteDef]:
    return [
        web.post("/v1/messages", _handle_messages),
        web.post("/v1/messages/count_tokens", _handle_count_tokens),
    ]
