"""The translating path: call the deployment through ``litellm.Router`` (Anthropic, Bedrock, mocks...).

The Router asks RouteIQ's plugin for the deployment, which hands back this attempt's decision, so
both executors serve exactly the deployment the strategy chose. LiteLLM does no retries or
fallbacks of its own here (the dispatcher does them for both executors), but it still records the
failure in its cooldown state.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import litellm
import orjson

from routeiq.executors.base import (
    Completed,
    Operation,
    Streaming,
    UpstreamError,
    sse_error_event,
    upstream_error,
    upstream_timeout,
)
from routeiq.routing.deployments import Deployment
from routeiq.routing.plugin import CONTEXT_KEY
from routeiq.routing.strategy import RoutingContext

DONE_EVENT = b"data: [DONE]\n\n"


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
        except Exception as error:
            raise _from_litellm(error, deployment) from None
        if streaming:
            return await _open_stream(response, deployment, operation)
        data = response.model_dump()
        if operation is Operation.EMBEDDINGS and body.get("encoding_format") == "base64":
            _encode_embeddings_base64(data)
        return Completed(body=orjson.dumps(data), usage=data.get("usage"))


def _from_litellm(error: Exception, deployment: Deployment) -> UpstreamError:
    message = f"deployment {deployment.id} failed: {getattr(error, 'message', None) or error}"
    if isinstance(error, litellm.Timeout):
        return upstream_timeout(message)
    status = getattr(error, "status_code", None)
    if isinstance(error, litellm.RateLimitError):
        status = 429
    return upstream_error(status if isinstance(status, int) else 502, message)


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
