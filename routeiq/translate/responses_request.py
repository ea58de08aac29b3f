"""An OpenAI Responses request, validated and rewritten as the equivalent chat-completions body.

RouteIQ's Responses API is stateless: every call carries its whole conversation in ``input``.
``previous_response_id``, ``conversation``, ``background`` and ``item_reference`` inputs need
responses kept on the server, and are refused with a 400 that says so (a gateway that kept them
would hold every caller's conversations, and would have to bind each to its key; clients such as
Codex send the full input with ``store: false`` anyway). Nothing is stored, whatever ``store`` says.

What maps:

- ``instructions`` -> a leading ``system`` message; ``input`` as a string -> one user message.
- ``input`` items: messages (``user``/``assistant``/``system``/``developer``; ``input_text`` and an
  assistant's ``output_text``/``refusal`` -> text, ``input_image`` -> ``image_url``);
  ``function_call`` -> the assistant's ``tool_calls`` (consecutive calls in one assistant turn);
  ``function_call_output`` -> a ``tool`` message; ``reasoning`` items are the model's own and are
  not sent back to a chat upstream.
- ``tools`` (function tools) -> chat function tools (``strict`` kept); ``tool_choice``;
  ``parallel_tool_calls``; ``text.format`` (``json_schema``, ``json_object``) -> ``response_format``;
  ``reasoning.effort`` -> ``reasoning_effort``; ``max_output_tokens`` -> ``max_tokens``;
  ``temperature``, ``top_p``, ``user``; ``stream`` (usage always requested, for
  ``response.completed``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from routeiq.api.requests import InvalidRequest

STATEFUL_FIELDS = ("previous_response_id", "conversation")
MESSAGE_ROLES = frozenset({"user", "assistant", "system", "developer"})
TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
TOOL_CHOICES = frozenset({"auto", "none", "required"})
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
STATELESS = (
    "RouteIQ's Responses API is stateless and stores no responses: send the whole conversation "
    "as input items (messages, function_call and function_call_output) instead"
)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    return names.get(type(value), "an object" if isinstance(value, dict) else type(value).__name__)


def _among(value: Any, names: Collection[str]) -> bool:
    """``value`` is one of ``names`` (a client's odd JSON, an array say, is simply not)."""
    return isinstance(value, str) and value in names


def _expect(ok: bool, expected: str, value: Any, *path: str | int) -> None:
    if not ok:
        raise InvalidRequest(f"expected {expected}, got {_kind(value)}", *path)


def _part(part: Any, *path: str | int) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise InvalidRequest(f"expected a content part object, got {_kind(part)}", *path)
    kind = part.get("type")
    if _among(kind, TEXT_PARTS):
        _expect(isinstance(part.get("text"), str), "a string", part.get("text"), *path, "text")
        return {"type": "text", "text": part["text"]}
    if kind == "refusal":
        _expect(isinstance(part.get("refusal"), str), "a string", part.get("refusal"), *path, "refusal")
        return {"type": "text", "text": part["refusal"]}
    if kind == "input_image":
        url = part.get("image_url")
        _expect(isinstance(url, str), "an image_url (file_id needs stored files)", url, *path, "image_url")
        image: dict[str, Any] = {"url": url}
        if isinstance(part.get("detail"), str):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise InvalidRequest(f"unknown or unsupported content part type {kind!r}", *path, "type")


def _content(content: Any, *path: str | int) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    _expect(isinstance(content, list), "a string or an array of content parts", content, *path)
    parts = [_part(part, *path, index) for index, part in enumerate(content)]
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def _message(item: dict[str, Any], index: int) -> dict[str, Any]:
    role = item.get("role")
    if not _among(role, MESSAGE_ROLES):
        raise InvalidRequest(f"{role!r} is not one of {sorted(MESSAGE_ROLES)}", "input", index, "role")
    content = _content(item.get("content"), "input", index, "content")
    if role == "assistant" and not isinstance(content, str):  # an assistant turn is text in chat
        content = "".join(part.get("text", "") for part in content)
    return {"role": role, "content": content}


def _function_call(item: dict[str, Any], index: int) -> dict[str, Any]:
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
    _expect(isinstance(call_id, str) and bool(call_id), "a call_id", call_id, "input", index, "call_id")
    _expect(isinstance(name, str) and bool(name), "a function name", name, "input", index, "name")
    _expect(isinstance(arguments, str), "a string of JSON arguments", arguments, "input", index, "arguments")
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _function_output(item: dict[str, Any], index: int) -> dict[str, Any]:
    call_id, output = item.get("call_id"), item.get("output")
    _expect(isinstance(call_id, str) and bool(call_id), "a call_id", call_id, "input", index, "call_id")
    if isinstance(output, list):
        parts = [_part(part, "input", index, "output", position) for position, part in enumerate(output)]
        output = "".join(part.get("text", "") for part in parts)
    _expect(
        isinstance(output, str), "a string or an array of content parts", output, "input", index, "output"
    )
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def _input_messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    _expect(isinstance(value, list), "a string or an array of input items", value, "input")
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        _expect(isinstance(item, dict), "an input item object", item, "input", index)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, index))
        elif kind == "function_call":
            call = _function_call(item, index)
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            elif last is not None and last["role"] == "assistant" and isinstance(last["content"], str):
                last["tool_calls"] = [call]  # the text the model said before calling
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(_function_output(item, index))
        elif kind == "reasoning":
            continue
        elif kind == "item_reference":
            raise InvalidRequest(STATELESS, "input", index, "type")
        else:
            raise InvalidRequest(f"unknown or unsupported input item type {kind!r}", "input", index, "type")
    if not messages:
        raise InvalidRequest("must contain at least one message", "input")
    return messages


def _tools(tools: Any) -> list[dict[str, Any]]:
    _expect(isinstance(tools, list), "an array of tools", tools, "tools")
    translated = []
    for index, tool in enumerate(tools):
        _expect(isinstance(tool, dict), "a tool object", tool, "tools", index)
        if tool.get("type") != "function":
            raise InvalidRequest(
                f"tool type {tool.get('type')!r} is not served: only function tools", "tools", index, "type"
            )
        name = tool.get("name")
        _expect(isinstance(name, str) and bool(name), "a function name", name, "tools", index, "name")
        function = {key: tool[key] for key in ("name", "description", "parameters", "strict") if key in tool}
        translated.append({"type": "function", "function": function})
    return translated


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise InvalidRequest(f"{choice!r} is not one of {sorted(TOOL_CHOICES)} or a tool", "tool_choice")
        return choice
    _expect(isinstance(choice, dict), "a string or a tool choice object", choice, "tool_choice")
    if choice.get("type") != "function":
        raise InvalidRequest("only function tools can be chosen", "tool_choice", "type")
    name = choice.get("name")
    _expect(isinstance(name, str) and bool(name), "a function name", name, "tool_choice", "name")
    return {"type": "function", "function": {"name": name}}


def _response_format(text: Any) -> dict[str, Any] | None:
    _expect(isinstance(text, dict), "an object", text, "text")
    fmt = text.get("format")
    if fmt is None:
        return None
    _expect(isinstance(fmt, dict), "an object", fmt, "text", "format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        name, schema = fmt.get("name"), fmt.get("schema")
        _expect(isinstance(name, str) and bool(name), "a schema name", name, "text", "format", "name")
        _expect(isinstance(schema, dict), "an object", schema, "text", "format", "schema")
        json_schema = {key: fmt[key] for key in ("name", "schema", "strict", "description") if key in fmt}
        return {"type": "json_schema", "json_schema": json_schema}
    raise InvalidRequest(
        f"{kind!r} is not one of ['json_object', 'json_schema', 'text']", "text", "format", "type"
    )


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    _expect(isinstance(value, int | float) and not isinstance(value, bool), "a number", value, name)
    if not low <= value <= high:
        raise InvalidRequest(f"must be between {low:g} and {high:g}, got {value!r}", name)


def responses_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body for a Responses request; ``InvalidRequest`` when it is not valid."""
    for name in STATEFUL_FIELDS:
        if body.get(name) is not None:
            raise InvalidRequest(STATELESS, name)
    if body.get("background"):
        raise InvalidRequest("background responses need stored responses; " + STATELESS, "background")
    model = body.get("model")
    _expect(isinstance(model, str) and bool(model), "a model name", model, "model")
    if body.get("input") is None:
        raise InvalidRequest("is required", "input")
    messages = _input_messages(body["input"])
    instructions = body.get("instructions")
    if instructions is not None:
        _expect(isinstance(instructions, str), "a string", instructions, "instructions")
        messages.insert(0, {"role": "system", "content": instructions})
    chat: dict[str, Any] = {"model": model, "messages": messages}
    max_output = body.get("max_output_tokens")
    if max_output is not None:
        valid = isinstance(max_output, int) and not isinstance(max_output, bool) and max_output >= 1
        _expect(valid, "a positive integer", max_output, "max_output_tokens")
        chat["max_tokens"] = max_output
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    for name in ("temperature", "top_p", "user", "parallel_tool_calls"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("tools") is not None:
        tools = _tools(body["tools"])
        if tools:
            chat["tools"] = tools
    if body.get("tool_choice") is not None and "tools" in chat:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("text") is not None:
        response_format = _response_format(body["text"])
        if response_format is not None:
            chat["response_format"] = response_format
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        effort = reasoning["effort"]
        if not _among(effort, EFFORTS):
            raise InvalidRequest(f"{effort!r} is not one of {sorted(EFFORTS)}", "reasoning", "effort")
        chat["reasoning_effort"] = effort
    stream = body.get("stream")
    if stream is not None:
        _expect(isinstance(stream, bool), "a boolean", stream, "stream")
        if stream:
            chat["stream"] = True
            chat["stream_options"] = {"include_usage": True}  # response.completed carries the usage
    if isinstance(body.get("routeiq"), dict):
        chat["routeiq"] = body["routeiq"]
    return chat
