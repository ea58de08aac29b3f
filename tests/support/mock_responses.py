"""The mock upstream's native OpenAI Responses API: ``POST /v1/responses``, for deployments that
serve it themselves (``model_info.responses_api: true``).

Served by the OpenAI-compatible mock (``tests.support.mock_upstream``) with its request recording
and model-name behaviours (``fail429``/``fail500``/``fail400``; ``midstream`` drops a stream after
its fourth event). The answer says ``native reply from <model>: <last user text>`` (so a test can
tell it from a translated one, which comes from ``/chat/completions``); usage counts words.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from tests.support.mock_upstream import _failure_response, _state


def _last_text(body: dict[str, Any]) -> str:
    value = body.get("input")
    if isinstance(value, str):
        return value
    for item in reversed(value if isinstance(value, list) else []):
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _response(body: dict[str, Any], status: str, text: str, words: int) -> dict[str, Any]:
    item = {
        "id": "msg_" + secrets.token_hex(8),
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    prompt = len(_last_text(body).split()) + len(str(body.get("instructions") or "").split())
    return {
        "id": "resp_mock" + secrets.token_hex(8),
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": body["model"],
        "output": [item] if status == "completed" else [],
        "store": body.get("store", True),
        "usage": {"input_tokens": prompt, "output_tokens": words, "total_tokens": prompt + words}
        if status == "completed"
        else None,
    }


def _event(kind: str, sequence: int, **fields: Any) -> bytes:
    data = {"type": kind, "sequence_number": sequence, **fields}
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _events(body: dict[str, Any], text: str) -> list[bytes]:
    done = _response(body, "completed", text, len(text.split()))
    item = done["output"][0]
    started = {**done, "status": "in_progress", "output": [], "usage": None}
    where = {"item_id": item["id"], "output_index": 0}
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
        (
            "response.output_item.added",
            {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}},
        ),
        (
            "response.content_part.added",
            {**where, "content_index": 0, "part": {**item["content"][0], "text": ""}},
        ),
    ]
    for piece in re.findall(r"\S+\s*", text):
        kinds.append(("response.output_text.delta", {**where, "content_index": 0, "delta": piece}))
    kinds += [
        ("response.output_text.done", {**where, "content_index": 0, "text": text}),
        ("response.content_part.done", {**where, "content_index": 0, "part": item["content"][0]}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": done}),
    ]
    return [_event(kind, sequence, **fields) for sequence, (kind, fields) in enumerate(kinds)]


async def _handle_responses(request: web.Request) -> web.StreamResponse:
    body = orjson.loads(await request.read())
    model = str(body.get("model", ""))
    behaviour = _state(request).behaviour_for(model)
    if behaviour.fail_status is not None:
        return _failure_response(behaviour.fail_status, model)
    text = f"native reply from {model}: {_last_text(body)[:40]}"
    if not body.get("stream"):
        answer = _response(body, "completed", text, len(text.split()))
        return web.Response(body=orjson.dumps(answer), content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for index, event in enumerate(_events(body, text)):
        if behaviour.midstream and index == 4:
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write(event)
    await response.write_eof()
    return response


def responses_routes() -> list[web.RouteDef]:
    return [web.post("/v1/responses", _handle_responses)]
