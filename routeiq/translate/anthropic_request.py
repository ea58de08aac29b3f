"""An Anthropic Messages request, validated and rewritten as the equivalent chat-completions body.

What maps, field by field:

- ``system`` (a string or text blocks) -> a leading ``system`` message (blocks joined by newlines).
- ``messages``: ``user``/``assistant`` only. Text blocks -> text parts (a lone text block -> a string);
  ``image`` (base64 or url source) -> ``image_url`` parts (base64 as a data URL); an assistant's
  ``tool_use`` blocks -> ``tool_calls`` (``input`` serialised as the arguments); a user's
  ``tool_result`` blocks -> ``tool`` messages placed first, right after the assistant turn that
  called (``is_error`` results are prefixed ``Error:``, images in results follow as a user message);
  ``document`` blocks: plain text (a ``text`` source, or a ``content`` source's text and images) ->
  text (and image) parts, a base64 PDF -> a ``file`` part (``file_data`` as a data URL, the
  ``title`` as its file name), a PDF by URL or a Files API id -> a 400 (no chat equivalent);
  ``citations`` are dropped (no chat upstream cites);
  an assistant's ``thinking``/``redacted_thinking`` blocks -> its ``thinking_blocks`` (LiteLLM's
  name; ``chat_targets`` keeps them only for the Claude models that need them back).
- ``max_tokens`` (required), ``temperature``, ``top_p``, ``stop_sequences`` -> ``stop``,
  ``metadata.user_id`` -> ``user``, ``stream`` (usage always requested, for ``message_delta``).
- ``tools`` (custom tools) -> function tools; ``tool_choice`` auto/any/tool/none -> auto/required/the
  named function/none; ``disable_parallel_tool_use`` -> ``parallel_tool_calls: false``.
- ``thinking`` (enabled, with its ``budget_tokens``) -> ``thinking``, which ``chat_targets`` turns
  into what each deployment takes (``reasoning_effort``, or nothing for a model that does not reason);
  disabled thinking is simply no ``thinking``.
- Not translatable and dropped: ``top_k`` (honoured by deployments that speak the Anthropic wire,
  which get the request as sent), ``cache_control`` markers, ``service_tier``.
  RouteIQ's own ``routeiq`` options pass through.

A bad request is refused here with ``InvalidRequest`` naming the client's field
(``messages.1.content.0.type``), as Anthropic would: unknown roles, unknown block types, a missing
``max_tokens``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson

from routeiq.api.requests import InvalidRequest

ROLES = frozenset({"user", "assistant"})
USER_BLOCKS = frozenset({"text", "image", "tool_result", "document"})
ASSISTANT_BLOCKS = frozenset({"text", "tool_use", "thinking", "redacted_thinking"})
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
PDF = "application/pdf"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "an object" if isinstance(value, dict) else type(value).__name__
    )


def _among(value: Any, names: Collection[str]) -> bool:
    """``value`` is one of ``names`` (a client's odd JSON, an array say, is simply not)."""
    return isinstance(value, str) and value in names


def _expect(ok: bool, expected: str, value: Any, *path: str | int) -> None:
    if not ok:
        raise InvalidRequest(f"expected {expected}, got {_kind(value)}", *path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_in(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    _expect(is_number, "a number", value, name)
    if not low <= value <= high:
        raise InvalidRequest(f"must be between {low:g} and {high:g}, got {value!r}", name)
    return float(value)


def _text_of(block: dict[str, Any], *path: str | int) -> str:
    text = block.get("text")
    _expect(isinstance(text, str), "a string", text, *path, "text")
    return str(text)


def _image_part(block: dict[str, Any], *path: str | int) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f"expected an image source object, got {_kind(source)}", *path, "source")
    kind = source.get("type")
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not _among(media_type, IMAGE_MEDIA_TYPES):
            raise InvalidRequest(f"{media_type!r} is not one of {sorted(IMAGE_MEDIA_TYPES)}", *path, "source")
        _expect(isinstance(data, str), "a string", data, *path, "source", "data")
        return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
    if kind == "url":
        url = source.get("url")
        _expect(isinstance(url, str), "a string", url, *path, "source", "url")
        return {"type": "image_url", "image_url": {"url": url}}
    raise InvalidRequest(
        f"image source type {kind!r} is not one of ['base64', 'url']", *path, "source", "type"
    )


def _document_parts(block: dict[str, Any], *path: str | int) -> list[dict[str, Any]]:
    """A document as chat parts: its text (and images), or a PDF as a ``file`` part."""
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f"expected a document source object, got {_kind(source)}", *path, "source")
    kind = source.get("type")
    if kind == "text":
        data = source.get("data")
        _expect(isinstance(data, str), "a string", data, *path, "source", "data")
        return [{"type": "text", "text": data}]
    if kind == "content":
        parts = []
        for index, item in enumerate(_blocks(source.get("content"), *path, "source", "content")):
            item_path = (*path, "source", "content", index)
            if item.get("type") == "text":
                parts.append({"type": "text", "text": _text_of(item, *item_path)})
            elif item.get("type") == "image":
                parts.append(_image_part(item, *item_path))
            else:
                raise InvalidRequest(f"unknown document content block type {item.get('type')!r}", *item_path)
        return parts
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if media_type != PDF:
            raise InvalidRequest(f"{media_type!r} is not {PDF!r}", *path, "source", "media_type")
        _expect(isinstance(data, str), "a string", data, *path, "source", "data")
        title = block.get("title")
        filename = title if isinstance(title, str) and title else "document.pdf"
        return [{"type": "file", "file": {"filename": filename, "file_data": f"data:{PDF};base64,{data}"}}]
    if kind in ("url", "file"):
        raise InvalidRequest(
            f"a document from a {kind} source is served only by Anthropic-wire deployments "
            "(send a PDF as base64, or text as a text source)",
            *path,
            "source",
            "type",
        )
    raise InvalidRequest(
        f"document source type {kind!r} is not one of ['base64', 'content', 'file', 'text', 'url']",
        *path,
        "source",
        "type",
    )


def _blocks(content: Any, *path: str | int) -> list[dict[str, Any]]:
    """A message's content as a list of blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    _expect(isinstance(content, list), "a string or an array of content blocks", content, *path)
    for index, block in enumerate(content):
        _expect(isinstance(block, dict), "a content block object", block, *path, index)
    return list(content)


def _chat_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Text parts alone become one string (what every chat upstream takes); otherwise the parts."""
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts) if len(parts) <= 1 else parts
    return parts


def _tool_result(block: dict[str, Any], *path: str | int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A ``tool`` message, and the images of the result (a chat tool message carries text only)."""
    tool_use_id = block.get("tool_use_id")
    _expect(
        isinstance(tool_use_id, str) and bool(tool_use_id), "a tool_use_id", tool_use_id, *path, "tool_use_id"
    )
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    content = block.get("content")
    if content is not None:
        for index, item in enumerate(_blocks(content, *path, "content")):
            kind = item.get("type")
            if kind == "text":
                texts.append(_text_of(item, *path, "content", index))
            elif kind == "image":
                images.append(_image_part(item, *path, "content", index))
            else:
                raise InvalidRequest(
                    f"unknown tool result block type {kind!r}", *path, "content", index, "type"
                )
    text = "\n".join(texts)
    if block.get("is_error"):
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}, images


def _user_messages(content: Any, index: int) -> list[dict[str, Any]]:
    if isinstance(content, str):  # the common turn, as is
        return [{"role": "user", "content": content}]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for position, block in enumerate(_blocks(content, "messages", index, "content")):
        path = ("messages", index, "content", position)
        kind = block.get("type")
        if not _among(kind, USER_BLOCKS):
            raise InvalidRequest(f"unknown content block type {kind!r} in a user message", *path, "type")
        if kind == "text":
            parts.append({"type": "text", "text": _text_of(block, *path)})
        elif kind == "image":
            parts.append(_image_part(block, *path))
        elif kind == "tool_result":
            message, images = _tool_result(block, *path)
            tool_messages.append(message)
            parts.extend(images)
        else:
            parts.extend(_document_parts(block, *path))
    messages = tool_messages
    if parts:
        messages.append({"role": "user", "content": _chat_content(parts)})
    elif not tool_messages:
        messages.append({"role": "user", "content": ""})
    return messages


def _assistant_message(content: Any, index: int) -> dict[str, Any]:
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for position, block in enumerate(_blocks(content, "messages", index, "content")):
        path = ("messages", index, "content", position)
        kind = block.get("type")
        if not _among(kind, ASSISTANT_BLOCKS):
            raise InvalidRequest(
                f"unknown content block type {kind!r} in an assistant message", *path, "type"
            )
        if kind == "text":
            texts.append(_text_of(block, *path))
        elif kind == "tool_use":
            call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
            _expect(isinstance(call_id, str) and bool(call_id), "a tool_use id", call_id, *path, "id")
            _expect(isinstance(name, str) and bool(name), "a tool name", name, *path, "name")
            _expect(isinstance(arguments, dict), "an object", arguments, *path, "input")
            tool_calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
                }
            )
        elif kind == "thinking":
            text, signature = block.get("thinking"), block.get("signature", "")
            _expect(isinstance(text, str), "a string", text, *path, "thinking")
            _expect(isinstance(signature, str), "a string", signature, *path, "signature")
            thinking.append({"type": "thinking", "thinking": text, "signature": signature})
        else:  # redacted_thinking
            data = block.get("data")
            _expect(isinstance(data, str), "a string", data, *path, "data")
            thinking.append({"type": "redacted_thinking", "data": data})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    elif message["content"] is None:
        message["content"] = ""
    if thinking:
        message["thinking_blocks"] = thinking
    return message


def _system(system: Any) -> str:
    if isinstance(system, str):
        return system
    _expect(isinstance(system, list), "a string or an array of text blocks", system, "system")
    texts = []
    for index, block in enumerate(system):
        _expect(isinstance(block, dict), "a text block", block, "system", index)
        if block.get("type") != "text":
            raise InvalidRequest(
                f"system blocks must be text, got {block.get('type')!r}", "system", index, "type"
            )
        texts.append(_text_of(block, "system", index))
    return "\n".join(texts)


def _tools(tools: Any) -> list[dict[str, Any]]:
    _expect(isinstance(tools, list), "an array of tools", tools, "tools")
    translated = []
    for index, tool in enumerate(tools):
        _expect(isinstance(tool, dict), "a tool object", tool, "tools", index)
        kind = tool.get("type", "custom")
        if kind != "custom":
            raise InvalidRequest(
                f"tool type {kind!r} is served only by Anthropic-wire deployments", "tools", index, "type"
            )
        name, schema = tool.get("name"), tool.get("input_schema")
        _expect(isinstance(name, str) and bool(name), "a tool name", name, "tools", index, "name")
        _expect(isinstance(schema, dict), "an object", schema, "tools", index, "input_schema")
        function: dict[str, Any] = {"name": name, "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        translated.append({"type": "function", "function": function})
    return translated


def _tool_choice(choice: Any, chat: dict[str, Any]) -> None:
    _expect(isinstance(choice, dict), "a tool_choice object", choice, "tool_choice")
    kind = choice.get("type")
    if kind == "tool":
        name = choice.get("name")
        _expect(isinstance(name, str) and bool(name), "a tool name", name, "tool_choice", "name")
        chat["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif _among(kind, TOOL_CHOICES):
        chat["tool_choice"] = TOOL_CHOICES[kind]
    else:
        raise InvalidRequest(f"{kind!r} is not one of ['any', 'auto', 'none', 'tool']", "tool_choice", "type")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        chat["parallel_tool_calls"] = False


def _thinking(thinking: Any) -> dict[str, Any] | None:
    """The ``thinking`` option when enabled, None when disabled."""
    _expect(isinstance(thinking, dict), "a thinking object", thinking, "thinking")
    kind = thinking.get("type")
    if kind == "disabled":
        return None
    if kind != "enabled":
        raise InvalidRequest(f"{kind!r} is not one of ['disabled', 'enabled']", "thinking", "type")
    budget = thinking.get("budget_tokens")
    # (its range is the model's to judge: interleaved thinking, say, may exceed max_tokens)
    _expect(_is_int(budget) and budget >= 1, "a positive integer", budget, "thinking", "budget_tokens")
    return {"type": "enabled", "budget_tokens": budget}


def messages_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body for a Messages request; ``InvalidRequest`` when it is not valid."""
    model = body.get("model")
    _expect(isinstance(model, str) and bool(model), "a model name", model, "model")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequest("is required", "max_tokens")
    _expect(_is_int(max_tokens) and max_tokens >= 1, "a positive integer", max_tokens, "max_tokens")
    messages = body.get("messages")
    _expect(isinstance(messages, list), "an array of messages", messages, "messages")
    if not messages:
        raise InvalidRequest("must contain at least one message", "messages")
    chat_messages: list[dict[str, Any]] = []
    if body.get("system") is not None:
        chat_messages.append({"role": "system", "content": _system(body["system"])})
    for index, message in enumerate(messages):
        _expect(isinstance(message, dict), "a message object", message, "messages", index)
        role = message.get("role")
        if not _among(role, ROLES):
            raise InvalidRequest(f"{role!r} is not one of ['assistant', 'user']", "messages", index, "role")
        if role == "user":
            chat_messages.extend(_user_messages(message.get("content"), index))
        else:
            chat_messages.append(_assistant_message(message.get("content"), index))
    chat: dict[str, Any] = {"model": model, "messages": chat_messages, "max_tokens": max_tokens}
    for name in ("temperature", "top_p"):
        value = _number_in(body, name, 0, 1)
        if value is not None:
            chat[name] = body[name]
    stop = body.get("stop_sequences")
    if stop is not None:
        valid = isinstance(stop, list) and all(isinstance(item, str) for item in stop)
        _expect(valid, "an array of strings", stop, "stop_sequences")
        if stop:
            chat["stop"] = stop
    metadata = body.get("metadata")
    if metadata is not None:
        _expect(isinstance(metadata, dict), "an object", metadata, "metadata")
        user_id = metadata.get("user_id")
        if user_id is not None:
            _expect(isinstance(user_id, str), "a string", user_id, "metadata", "user_id")
            chat["user"] = user_id
    if body.get("tools") is not None:
        tools = _tools(body["tools"])
        if tools:
            chat["tools"] = tools
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], chat)
        if "tools" not in chat:
            chat.pop("tool_choice", None)  # a chat upstream refuses a choice among no tools
            chat.pop("parallel_tool_calls", None)
    if body.get("thinking") is not None:
        thinking = _thinking(body["thinking"])
        if thinking is not None:
            chat["thinking"] = thinking
    stream = body.get("stream")
    if stream is not None:
        _expect(isinstance(stream, bool), "a boolean", stream, "stream")
        if stream:
            chat["stream"] = True
            chat["stream_options"] = {"include_usage": True}  # message_delta carries the real usage
    if isinstance(body.get("routeiq"), dict):
        chat["routeiq"] = body["routeiq"]
    return chat
