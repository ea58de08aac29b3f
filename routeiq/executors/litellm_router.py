"""The translating path: call the deployment through ``litellm.Router`` (Anthropic, Bedrock, mocks...).

The Router asks RouteIQ's plugin for the deployment, which hands back this attempt's decision, so
both executors serve exactly the deployment the strategy chose. LiteLLM does no retries or
fallbacks of its own here (the dispatcher does them for both executors), but it still records the
failure in its cooldown state.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import AsyncIterator
from typing import Any

import litellm
import openai
import orjson

from routeiq.executors.base import (
    Completed,
    Operation,
    Streaming,
    UpstreamError,
    error_object_detail,
    invalid_answer,
    report_failure,
    sse_error_event,
    upstream_error,
    upstream_timeout,
)
from routeiq.routing.deployments import Deployment
from routeiq.routing.litellm_hook import CONTEXT_KEY
from routeiq.routing.strategy import RoutingContext

DONE_EVENT = b"data: [DONE]\n\n"
# LiteLLM wraps a provider's message in its own words: "litellm.InternalServerError: InternalServerError:
# OpenAIException - <message>\n\nLiteLLM: model group ... No fallback was attempted." Clients get the
# provider's message; the rest describes LiteLLM's internals, not what RouteIQ did.
_LITELLM_PREFIX = re.compile(r"^(?:litellm\.\w+:\s*|\w+Error:\s*|[\w-]+Exception - )+")
_LITELLM_SUFFIX = re.compile(
    r"(?:\n\nLiteLLM: | Original exception: |\. Handle with `litellm\.|\nReceived Model Group=).*", re.S
)
MAX_DETAIL_CHARS = 500
MAX_CAUSE_DEPTH = 8


class LiteLLMExecutor:
    def __init__(self, router: Any, timeout_seconds: float) -> None:
        self._router = router
        self._timeout_seconds = timeout_seconds
        self._methods = {
            Operation.CHAT: router.acompletion,
            Operation.COMPLETIONS: router.atext_completion,
            Operation.EMBEDDINGS: router.aembedding,
        }

    async def execute(
        self, operation: Operation, body: dict[str, Any], deployment: Deployment, context: RoutingContext
    ) -> Completed | Streaming:
        kwargs = {key: value for key, value in body.items() if key != "model"}
        client_metadata = kwargs.get("metadata")
        kwargs["metadata"] = {
            **(client_metadata if isinstance(client_metadata, dict) else {}),
            CONTEXT_KEY: context,
        }
        kwargs["timeout"] = deployment.timeout or self._timeout_seconds
        kwargs["num_retries"] = 0
        streaming = operation.streams and bool(body.get("stream"))
        try:
            response = await self._methods[operation](model=deployment.group, **kwargs)
            if streaming:
                return await _open_stream(response, deployment, operation)
        except UpstreamError as error:
            report_failure(self._router.health(), deployment, error)  # LiteLLM counted a success
            raise
        except Exception as error:
            raise _from_litellm(error, deployment) from None
        data = response.model_dump()
        detail = error_object_detail(data)
        if detail is not None:  # LiteLLM hands an error body back as an empty answer
            failure = invalid_answer(deployment, detail)
            report_failure(self._router.health(), deployment, failure)
            raise failure
        if operation is Operation.EMBEDDINGS and body.get("encoding_format") == "base64":
            _encode_embeddings_base64(data)
        return Completed(body=orjson.dumps(data), usage=data.get("usage"))


def _from_litellm(error: Exception, deployment: Deployment) -> UpstreamError:
    no_answer = _no_answer(error)
    if no_answer is not None:
        return invalid_answer(deployment, no_answer)
    detail = provider_detail(str(getattr(error, "message", None) or error))
    if isinstance(error, litellm.Timeout):
        return upstream_timeout(f"deployment {deployment.id} did not answer in time")
    status = getattr(error, "status_code", None)
    if isinstance(error, litellm.RateLimitError):
        status = 429
    if isinstance(status, int):
        return upstream_error(status, f"deployment {deployment.id} answered {status}: {detail}")
    return upstream_error(502, f"deployment {deployment.id} failed: {detail}")


def _no_answer(error: BaseException) -> str | None:
    """What was wrong with a 200 that LiteLLM could not turn into an answer, or None when the
    failure was something else. LiteLLM reports these with made-up statuses (500 for a body that is
    not JSON, the error object's own code or 422 for an error object), so the cause chain decides."""
    seen: BaseException | None = error
    for _ in range(MAX_CAUSE_DEPTH):
        if seen is None:
            return None
        if isinstance(seen, json.JSONDecodeError):
            return "a body that is not JSON"
        if type(seen) is Exception and hasattr(seen, "status_code"):  # LiteLLM's error-object raise
            return f"an error instead of an answer: {provider_detail(str(getattr(seen, 'message', '')))}"
        if type(seen) is openai.APIError:  # the SDK's: a stream event that is an error object
            return f"an error instead of an answer: {provider_detail(seen.message)}"
        seen = seen.__cause__ or seen.__context__
    return None


def provider_detail(message: str) -> str:
    """The provider's own message inside LiteLLM's wrapping (see ``_LITELLM_PREFIX``)."""
    detail = _LITELLM_SUFFIX.sub("", _LITELLM_PREFIX.sub("", message.strip())).strip()
    return detail[:MAX_DETAIL_CHARS] or "no detail given"


def _encode_embeddings_base64(data: dict[str, Any]) -> None:
    """Match OpenAI's ``encoding_format=base64``: little-endian float32 bytes, base64-encoded."""
    for item in data.get("data") or []:
        vector = item.get("embedding")
        if isinstance(vector, list):
            packed = struct.pack(f"<{len(vector)}f", *vector)
            item["embedding"] = base64.b64encode(packed).decode("ascii")


def _event(chunk: Any, operation: Operation, served_model: str) -> bytes:
    data = chunk.model_dump(exclude_none=True)
    if operation is Operation.COMPLETIONS:
        # LiteLLM's last text-completion chunk has no text and a provider-prefixed model; OpenAI's has "".
        data["model"] = served_model
        for choice in data.get("choices") or []:
            choice.setdefault("text", "")
    return b"data: " + orjson.dumps(data) + b"\n\n"


async def _open_stream(stream: Any, deployment: Deployment, operation: Operation) -> Streaming:
    usage: dict[str, Any] = {}
    iterator = stream.__aiter__()

    def note_usage(chunk: Any) -> None:
        chunk_usage = getattr(chunk, "usage", None)
        if chunk_usage:
            usage.update(
                chunk_usage.model_dump() if hasattr(chunk_usage, "model_dump") else dict(chunk_usage)
            )

    try:
        first_chunk = await iterator.__anext__()
    except StopAsyncIteration:
        raise UpstreamError(
            502, f"deployment {deployment.id} sent an empty stream", code="upstream_error", retryable=True
        ) from None
    except Exception as error:
        raise _from_litellm(error, deployment) from None
    detail = error_object_detail({"error": getattr(first_chunk, "error", None)})
    if detail is not None:
        raise invalid_answer(deployment, detail)
    note_usage(first_chunk)
    served_model = getattr(first_chunk, "model", None) or deployment.upstream_model

    async def rest() -> AsyncIterator[bytes]:
        try:
            async for chunk in iterator:
                note_usage(chunk)
                yield _event(chunk, operation, served_model)
        except Exception as error:
            failure = _from_litellm(error, deployment)
            failure.code = "upstream_stream_interrupted"
            yield sse_error_event(failure)
            return
        yield DONE_EVENT

    async def close() -> None:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()

    first = _event(first_chunk, operation, served_model)
    return Streaming(first=first, rest=rest(), close=close, usage=lambda: usage or None)
