"""The OpenTelemetry GenAI semantic conventions as RouteIQ fills them in, for spans and metrics alike.

Every value here comes from the configuration (the deployment: its provider and model) or from the
upstream's answer, never from what a client sent, so metric labels stay bounded. Text is read from
bodies only by ``input_messages``/``output_messages``, which the callers use when
``trace_message_content`` is on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from routeiq.routing.deployments import Deployment

if TYPE_CHECKING:  # typing only: the executors import LiteLLM, and the request ledger imports this
    from routeiq.executors.base import Operation

OPERATION_NAMES = {"CHAT": "chat", "COMPLETIONS": "text_completion", "EMBEDDINGS": "embeddings"}

PATH_OPERATIONS = (
    ("/chat/completions", "chat"),
    ("/completions", "text_completion"),
    ("/embeddings", "embeddings"),
    ("/messages", "chat"),
    ("/responses", "chat"),
)

# LiteLLM provider prefixes -> the convention's gen_ai.provider.name where it names one; other
# providers keep LiteLLM's name (configured, so bounded).
PROVIDER_NAMES = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "sagemaker": "aws.bedrock",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "deepseek": "deepseek",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "groq": "groq",
    "watsonx": "ibm.watsonx.ai",
    "mistral": "mistral_ai",
    "perplexity": "perplexity",
    "xai": "x_ai",
}

_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')
_FINISH = re.compile(rb'"finish_reason"\s*:\s*"([a-z_]{1,40})"')
_DELTA_TEXT = re.compile(rb'"(?:content|text)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def operation_name(operation: Operation) -> str:
    """The convention's gen_ai.operation.name (an operation it does not name: its own name)."""
    return OPERATION_NAMES.get(operation.name) or operation.name.lower()


def provider_name(deployment: Deployment) -> str:
    return PROVIDER_NAMES.get(deployment.provider, deployment.provider)


def server_address(deployment: Deployment) -> tuple[str | None, int | None]:
    """Host and port of the deployment's API base, when it has one."""
    if not deployment.api_base:
        return None, None
    parts = urlsplit(deployment.api_base)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None and parts.scheme in ("http", "https"):
        port = 443 if parts.scheme == "https" else 80
    return parts.hostname, port


def attempt_attributes(operation: Operation, deployment: Deployment) -> dict[str, Any]:
    """What an upstream attempt's span says before the call: the convention's request attributes."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation_name(operation),
        "gen_ai.provider.name": provider_name(deployment),
        "gen_ai.request.model": deployment.upstream_model,
        "routeiq.deployment.id": deployment.id,
        "routeiq.group": deployment.group,
    }
    host, port = server_address(deployment)
    if host:
        attributes["server.address"] = host
    if port:
        attributes["server.port"] = port
    return attributes


def request_parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request's sampling parameters the convention names (numbers only, no text)."""
    attributes: dict[str, Any] = {}
    for field, name in (
        ("max_tokens", "gen_ai.request.max_tokens"),
        ("max_completion_tokens", "gen_ai.request.max_tokens"),
        ("temperature", "gen_ai.request.temperature"),
        ("top_p", "gen_ai.request.top_p"),
        ("n", "gen_ai.request.choice.count"),
    ):
        value = body.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = value
    return attributes


def usage_tokens(usage: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """(input, output) tokens of an OpenAI-shaped usage."""
    if not usage:
        return None, None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (
        int(prompt) if isinstance(prompt, int | float) else None,
        int(completion) if isinstance(completion, int | float) else None,
    )


def response_model(data: bytes) -> str | None:
    """The ``model`` an answer (or a stream's first event) names, without parsing the body."""
    match = _MODEL.search(data)
    return match.group(1).decode("utf-8", "replace") if match else None


def finish_reasons(data: bytes) -> list[str]:
    return sorted({match.decode() for match in _FINISH.findall(data)})


def input_messages(operation: Operation, body: Mapping[str, Any]) -> str:
    """The prompt as JSON (``gen_ai.input.messages``): messages, a completion prompt or the input."""
    fields = {"chat": "messages", "text_completion": "prompt"}
    return orjson.dumps(body.get(fields.get(operation_name(operation), "input")), default=str).decode()


def output_messages(data: bytes) -> str | None:
    """The answer's choices as JSON (``gen_ai.output.messages``), from a whole response body."""
    try:
        answer = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list):
        return None
    return orjson.dumps([choice.get("message", choice.get("text")) for choice in choices]).decode()


class StreamedText:
    """The text a stream carried, for ``gen_ai.output.messages`` (kept only when content capture is
    on), and its finish reasons."""

    __slots__ = ("finish", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish: set[str] = set()

    def feed(self, events: bytes) -> None:
        for match in _DELTA_TEXT.finditer(events):
            try:
                self.parts.append(orjson.loads(b'"' + match.group(1) + b'"'))
            except orjson.JSONDecodeError:
                continue
        self.finish.update(finish_reasons(events))

    def as_messages(self) -> str:
        return orjson.dumps([{"role": "assistant", "content": "".join(self.parts)}]).decode()


def operation_for_path(path: str) -> str:
    """The operation a model route serves (``/v1/chat/completions`` -> ``chat``)."""
    for suffix, name in PATH_OPERATIONS:
        if path.endswith(suffix):
            return name
    return path.rstrip("/").rsplit("/", 1)[-1] or "unknown"
