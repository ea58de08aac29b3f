"""The request bodies of the OpenAI routes, as OpenAPI documents them.

The routes read their bodies themselves (validated once by ``routeiq.api.requests``), so FastAPI
cannot infer these; they are declared here for clients, generated UI types and schemathesis. They
describe the fields RouteIQ checks (a known field sent as null counts as absent); every other field
is allowed and forwarded untouched.
"""

from __future__ import annotations

from typing import Any

_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_BOOLEAN = {"type": "boolean"}
_TOKEN_IDS = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}
_PROMPT = {
    "oneOf": [
        _STRING,
        {"type": "array", "items": _STRING, "minItems": 1},
        _TOKEN_IDS,
        {"type": "array", "items": _TOKEN_IDS, "minItems": 1},
    ]
}

_CONTENT_PART = {
    "oneOf": [
        {
            "type": "object",
            "required": ["type", "text"],
            "properties": {"type": {"const": "text"}, "text": _STRING},
        },
        {
            "type": "object",
            "required": ["type", "image_url"],
            "properties": {
                "type": {"const": "image_url"},
                "image_url": {"type": "object", "required": ["url"], "properties": {"url": _STRING}},
            },
        },
    ]
}

_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool", "function"]},
        # Required for system, developer and user turns; null for an assistant turn that only calls tools.
        "content": {"oneOf": [_STRING, {"type": "array", "items": _CONTENT_PART}, {"type": "null"}]},
        "name": _STRING,
        "tool_call_id": _STRING,
    },
}

_TOOL = {
    "type": "object",
    "required": ["type", "function"],
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1}, "parameters": {"type": "object"}},
        },
    },
}

_SAMPLING: dict[str, Any] = {
    "model": {"type": "string", "minLength": 1, "description": "a routing group or profile name"},
    "stream": _BOOLEAN,
    "stream_options": {"type": "object", "properties": {"include_usage": _BOOLEAN}},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "n": {"type": "integer", "minimum": 1, "maximum": 128},
    "stop": {"oneOf": [_STRING, {"type": "array", "items": _STRING, "maxItems": 4}]},
    "seed": {"type": "integer"},
    "user": _STRING,
}

CHAT = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        **_SAMPLING,
        "messages": {"type": "array", "items": _MESSAGE, "minItems": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "logprobs": _BOOLEAN,
        "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
        "tools": {"type": "array", "items": _TOOL},
        "tool_choice": {"oneOf": [{"enum": ["none", "auto", "required"]}, {"type": "object"}]},
        "parallel_tool_calls": _BOOLEAN,
        "response_format": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"enum": ["text", "json_object"]}},
                },
                {
                    "type": "object",
                    "required": ["type", "json_schema"],
                    "properties": {
                        "type": {"const": "json_schema"},
                        "json_schema": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": {"type": "string", "minLength": 1}},
                        },
                    },
                },
            ]
        },
    },
    "additionalProperties": True,
}

COMPLETIONS = {
    "type": "object",
    "required": ["model", "prompt"],
    "properties": {
        **_SAMPLING,
        "prompt": _PROMPT,
        "max_tokens": {"type": "integer", "minimum": 0},
        "logprobs": {"type": "integer", "minimum": 0, "maximum": 5},
        "echo": _BOOLEAN,
        "suffix": _NULLABLE_STRING,
    },
    "additionalProperties": True,
}

EMBEDDINGS = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": _SAMPLING["model"],
        "input": _PROMPT,
        "dimensions": {"type": "integer", "minimum": 1},
        "encoding_format": {"enum": ["float", "base64"]},
        "user": _STRING,
    },
    "additionalProperties": True,
}


def request_body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is ``schema``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
