"""Validate OpenAI request bodies once, before anything acts on them.

The first layer that reads a body (``routeiq.governance.call.load_body``) checks it here: the known
fields' types and ranges (messages and their content parts, roles, sampling numbers, ``n``, ``stop``,
``tools``, ``response_format``, ``stream_options``...). A bad one is a 400 whose ``param`` names it
(``messages.0.role``, ``temperature``), so policy, quotas, plugins and the upstream never see it.
Unknown fields are not looked at: they are forwarded exactly as sent.

Hand-written rather than a pydantic model: it runs on every request of the passthrough hot path,
reads each known field once and builds nothing. The path of a bad field is put together only when
one is found (each level adds its part as the error passes), so a valid body costs no strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from routeiq.api.errors import APIError, bad_request
from routeiq.middleware.paths import BodyKind

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Roles whose ``content`` may be null or absent (an assistant turn that only calls tools, say).
OPTIONAL_CONTENT_ROLES = frozenset({"assistant", "tool", "function"})
RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
TOOL_CHOICES = frozenset({"none", "auto", "required"})
ENCODING_FORMATS = frozenset({"float", "base64"})
MAX_STOP_SEQUENCES = 4
MAX_CHOICES = 128

Check = Callable[[Any], None]  # value -> None, or raise InvalidRequest


class InvalidRequest(Exception):
    """A known field with the wrong type or value; ``param`` is its dotted path."""

    def __init__(self, message: str, *path: str | int) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str | int] = list(path)

    def within(self, *parts: str | int) -> InvalidRequest:
        """The same error, one level up: ``parts`` lead to where it was found."""
        self.path[:0] = parts
        return self

    @property
    def param(self) -> str:
        return ".".join(str(part) for part in self.path)

    def to_api_error(self) -> APIError:
        param = self.param
        return bad_request(f"invalid '{param}': {self.message}", param=param, code="invalid_request")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _wrong_type(expected: str, value: Any, *path: str | int) -> InvalidRequest:
    return InvalidRequest(f"expected {expected}, got {_type_name(value)}", *path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


# --- field checks: each takes the value (callers skip absent and null optional fields) -----------


def _string(value: Any) -> None:
    if not isinstance(value, str):
        raise _wrong_type("a string", value)


def _nonempty_string(value: Any) -> None:
    if not isinstance(value, str):
        raise _wrong_type("a string", value)
    if not value:
        raise InvalidRequest("must not be empty")


def _boolean(value: Any) -> None:
    if not isinstance(value, bool):
        raise _wrong_type("a boolean", value)


def _object(value: Any) -> None:
    if not isinstance(value, dict):
        raise _wrong_type("an object", value)


def _number_in(low: float, high: float) -> Check:
    def check(value: Any) -> None:
        if not _is_number(value):
            raise _wrong_type("a number", value)
        if not low <= value <= high:
            raise InvalidRequest(f"must be between {low:g} and {high:g}, got {value!r}")

    return check


def _integer_in(low: int, high: int | None = None) -> Check:
    def check(value: Any) -> None:
        if not _is_int(value):
            raise _wrong_type("an integer", value)
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise InvalidRequest(f"must be {bound}, got {value}")

    return check


def _one_of(choices: frozenset[str]) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, str):  # checked first: an object or array cannot be looked up in a set
            raise _wrong_type("a string", value)
        if value not in choices:
            raise InvalidRequest(f"{value!r} is not one of {sorted(choices)}")

    return check


_role = _one_of(ROLES)
_response_format_type = _one_of(RESPONSE_FORMATS)
_token_id = _integer_in(0)


def _stop(value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise _wrong_type("a string or an array of strings", value)
    if len(value) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"at most {MAX_STOP_SEQUENCES} stop sequences")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _wrong_type("a string", item, index)


def _stream_options(value: Any) -> None:
    _object(value)
    include_usage = value.get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise _wrong_type("a boolean", include_usage, "include_usage")


def _at(where: str | int, check: Check, value: Any) -> None:
    """``check(value)``, with an error's ``param`` prefixed by ``where``."""
    try:
        check(value)
    except InvalidRequest as invalid:
        raise invalid.within(where) from None


def _each(check: Check, values: list[Any]) -> None:
    """``check`` on every item, an error naming the item's index."""
    for index, item in enumerate(values):
        _at(index, check, item)


_bias = _number_in(-100, 100)


def _logit_bias(value: Any) -> None:
    _object(value)
    for token, bias in value.items():
        _at(token, _bias, bias)


def _content_part(part: Any) -> None:
    _object(part)
    kind = part.get("type")
    if not isinstance(kind, str) or not kind:
        raise _wrong_type("a part type", kind, "type")
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise _wrong_type("a string", part.get("text"), "text")
    elif kind == "image_url":
        image = part.get("image_url")
        if isinstance(image, dict):
            if not isinstance(image.get("url"), str):
                raise _wrong_type("a string", image.get("url"), "image_url", "url")
        elif not isinstance(image, str):  # some clients send the URL itself
            raise _wrong_type("an object with a url", image, "image_url")


def _content(value: Any, optional: bool) -> None:
    if isinstance(value, str) or (value is None and optional):
        return
    if not isinstance(value, list):
        expected = "a string or an array of content parts" + (" or null" if optional else "")
        raise _wrong_type(expected, value)
    _each(_content_part, value)


def _required_content(value: Any) -> None:
    _content(value, optional=False)


def _optional_content(value: Any) -> None:
    _content(value, optional=True)


def _message(message: Any) -> None:
    _object(message)
    role = message.get("role")
    _at("role", _role, role)
    content_check = _optional_content if role in OPTIONAL_CONTENT_ROLES else _required_content
    _at("content", content_check, message.get("content"))
    name = message.get("name")
    if name is not None and not isinstance(name, str):
        raise _wrong_type("a string", name, "name")
    tool_calls = message.get("tool_calls")
    if tool_calls is not None and not isinstance(tool_calls, list):
        raise _wrong_type("an array", tool_calls, "tool_calls")
    tool_call_id = message.get("tool_call_id")
    if tool_call_id is not None and not isinstance(tool_call_id, str):
        raise _wrong_type("a string", tool_call_id, "tool_call_id")


def _messages(value: Any) -> None:
    if not isinstance(value, list):
        raise _wrong_type("an array of messages", value)
    if not value:
        raise InvalidRequest("must contain at least one message")
    _each(_message, value)


def _tool(tool: Any) -> None:
    _object(tool)
    kind = tool.get("type")
    if not isinstance(kind, str) or not kind:
        raise _wrong_type("a tool type", kind, "type")
    if kind == "function":
        function = tool.get("function")
        if not isinstance(function, dict):
            raise _wrong_type("an object", function, "function")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise _wrong_type("a function name", name, "function", "name")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise _wrong_type("an object", parameters, "function", "parameters")


def _tools(value: Any) -> None:
    if not isinstance(value, list):
        raise _wrong_type("an array of tools", value)
    _each(_tool, value)


def _tool_choice(value: Any) -> None:
    if isinstance(value, str):
        if value not in TOOL_CHOICES:
            raise InvalidRequest(f"{value!r} is not one of {sorted(TOOL_CHOICES)} or a tool object")
        return
    _object(value)
    kind = value.get("type")
    if not isinstance(kind, str) or not kind:
        raise _wrong_type("a tool type", kind, "type")


def _response_format(value: Any) -> None:
    _object(value)
    kind = value.get("type")
    _at("type", _response_format_type, kind)
    if kind == "json_schema":
        schema = value.get("json_schema")
        if not isinstance(schema, dict):
            raise _wrong_type("an object", schema, "json_schema")
        name = schema.get("name")
        if not isinstance(name, str) or not name:
            raise _wrong_type("a schema name", name, "json_schema", "name")


def _token_ids(value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise _wrong_type("a non-empty array of token ids", value)
    for index, item in enumerate(value):
        if not _is_int(item) or item < 0:
            raise _wrong_type("a token id (a non-negative integer)", item, index)


def _prompt(value: Any) -> None:
    """A string, strings, token ids, or lists of token ids (completions ``prompt``, embeddings ``input``)."""
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise _wrong_type("a string or an array", value)
    if not value:
        raise InvalidRequest("must not be empty")
    first = value[0]
    check: Check
    if isinstance(first, str):
        check = _string
    elif _is_int(first):
        check = _token_id
    elif isinstance(first, list):
        check = _token_ids
    else:
        raise _wrong_type("a string, a token id or an array of token ids", first, 0)
    _each(check, value)


_SAMPLING: dict[str, Check] = {
    "model": _nonempty_string,
    "stream": _boolean,
    "stream_options": _stream_options,
    "temperature": _number_in(0, 2),
    "top_p": _number_in(0, 1),
    "presence_penalty": _number_in(-2, 2),
    "frequency_penalty": _number_in(-2, 2),
    "n": _integer_in(1, MAX_CHOICES),
    "stop": _stop,
    "seed": _integer_in(-(2**63), 2**63 - 1),
    "logit_bias": _logit_bias,
    "user": _string,
}

CHAT: dict[str, Check] = {
    **_SAMPLING,
    "messages": _messages,
    "max_tokens": _integer_in(1),
    "max_completion_tokens": _integer_in(1),
    "logprobs": _boolean,
    "top_logprobs": _integer_in(0, 20),
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _boolean,
    "response_format": _response_format,
}

COMPLETIONS: dict[str, Check] = {
    **_SAMPLING,
    "prompt": _prompt,
    "max_tokens": _integer_in(0),  # 0 with echo: score a prompt without generating
    "logprobs": _integer_in(0, 5),
    "echo": _boolean,
    "best_of": _integer_in(1, MAX_CHOICES),
    "suffix": _string,
}

EMBEDDINGS: dict[str, Check] = {
    "model": _nonempty_string,
    "input": _prompt,
    "dimensions": _integer_in(1),
    "encoding_format": _one_of(ENCODING_FORMATS),
    "user": _string,
}

SCHEMAS: dict[BodyKind, tuple[dict[str, Check], tuple[str, ...]]] = {
    "chat": (CHAT, ("model", "messages")),
    "completions": (COMPLETIONS, ("model", "prompt")),
    "embeddings": (EMBEDDINGS, ("model", "input")),
}


def check_body(kind: BodyKind, body: Mapping[str, Any]) -> None:
    """Raise ``InvalidRequest`` for the first known field that is wrong; unknown fields pass.

    A known field set to null is treated as absent (the SDKs send nulls for unset options), except
    the required ones."""
    checks, required = SCHEMAS[kind]
    for name in required:
        if body.get(name) is None:
            raise InvalidRequest("is required", name)
    for name, value in body.items():
        check = checks.get(name)
        if check is not None and value is not None:
            _at(name, check, value)


def validate_body(kind: BodyKind, body: Mapping[str, Any]) -> None:
    """``check_body``, as the 400 the client gets."""
    try:
        check_body(kind, body)
    except InvalidRequest as invalid:
        raise invalid.to_api_error() from None
