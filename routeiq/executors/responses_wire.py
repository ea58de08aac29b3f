"""The fast path for OpenAI's Responses API: a ``/v1/responses`` call forwarded as sent to a
deployment that serves that API itself (``api.openai.com``, or ``model_info.responses_api: true``),
and its answer back as bytes.

The model name and the credential change on the way up, and ``store`` is always ``false``: RouteIQ's
Responses API is stateless (``routeiq.translate.responses_request``), so nothing the gateway could
not read back is left on the provider. The usage is read from the answer (``response.completed`` of
a stream) in chat terms for quotas and costs; a stream that breaks off ends with ``error`` and
``response.failed``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson

from routeiq.executors.anthropic_wire import token_count
from routeiq.executors.base import (
    Completed,
    Streaming,
    UpstreamError,
    error_object_detail,
    invalid_answer,
    report_failure,
)
from routeiq.executors.upstream_http import (
    EVENT_END,
    client_timeout,
    first_events,
    post,
    read_whole,
    whole_events,
)
from routeiq.routing.deployments import Deployment

TERMINAL = (b"event: response.completed", b"event: response.incomplete", b"event: response.failed")
SEQUENCE = re.compile(rb'"sequence_number":(\d+)')


def chat_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Responses usage in chat terms, as every other layer reads usage."""
    prompt = token_count(usage.get("input_tokens"))
    completion = token_count(usage.get("output_tokens"))
    details = usage.get("input_tokens_details")
    cached = token_count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


class _Progress:
    """How far a Responses stream got: its usage, whether it ended, the last sequence number."""

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None
        self.done = False
        self.sequence = -1

    def read(self, events: bytes) -> None:
        numbers = SEQUENCE.findall(events)
        if numbers:
            self.sequence = int(numbers[-1])
        for event in events.split(EVENT_END):
            if event.startswith(TERMINAL):
                self.done = True
                self._read_usage(event)

    def _read_usage(self, event: bytes) -> None:
        try:  # the bytes go on as they are; an event that cannot be read just reports no usage
            data = orjson.loads(event[event.index(b"data:") + 5 :])
        except (ValueError, orjson.JSONDecodeError):
            return
        response = data.get("response") if isinstance(data, dict) else None
        usage = response.get("usage") if isinstance(response, dict) else None
        if isinstance(usage, dict):
            self.usage = chat_usage(usage)

    def failure(self, code: str, message: str) -> bytes:
        """``error`` then ``response.failed``, numbered after the last event sent."""
        error: dict[str, Any] = {"type": "error", "code": code, "message": message, "param": None}
        error["sequence_number"] = self.sequence + 1
        failed = {
            "type": "response.failed",
            "sequence_number": self.sequence + 2,
            "response": {
                "object": "response",
                "status": "failed",
                "error": {"code": code, "message": message},
            },
        }
        return b"".join(
            b"event: " + str(data["type"]).encode() + b"\ndata: " + orjson.dumps(data) + EVENT_END
            for data in (error, failed)
        )


class ResponsesCall:
    """One Responses request as the client sent it, for the deployments that serve that API."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        health: Any,
        body: Mapping[str, Any],
        timeout_seconds: float,
        connect_timeout_seconds: float,
    ) -> None:
        self._session = session
        self._health = health
        self._body = body
        self._timeout_seconds = timeout_seconds
        self._connect_timeout_seconds = connect_timeout_seconds
        self.answered = False

    def serves(self, deployment: Deployment) -> bool:
        return deployment.speaks_responses

    def chat_body_for(self, deployment: Deployment, body: dict[str, Any]) -> dict[str, Any]:
        return body  # the chat translation of a Responses call suits every chat deployment as it is

    async def execute(self, deployment: Deployment) -> Completed | Streaming:
        try:
            outcome = await self._execute(deployment)
        except UpstreamError as error:
            if error.retryable:
                report_failure(self._health, deployment, error)
            raise
        self.answered = True
        return outcome

    async def _execute(self, deployment: Deployment) -> Completed | Streaming:
        payload = {**self._body, "model": deployment.upstream_model, "store": False}
        payload.pop("routeiq", None)
        streaming = bool(payload.get("stream"))
        timeout = client_timeout(deployment, self._timeout_seconds, self._connect_timeout_seconds, streaming)
        url = f"{deployment.api_base}/responses"
        data = orjson.dumps(payload)
        response = await post(self._session, deployment, url, data, deployment.upstream_headers, timeout)
        if not streaming:
            return await _whole(response, deployment)
        return await _stream(response, deployment)


async def _whole(response: aiohttp.ClientResponse, deployment: Deployment) -> Completed:
    data = await read_whole(response, deployment)
    try:
        answer = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise invalid_answer(deployment, "a body that is not JSON") from None
    detail = error_object_detail(answer)
    if detail is not None or not isinstance(answer, dict) or answer.get("object") != "response":
        raise invalid_answer(deployment, detail or "a body that is not a response")
    usage = answer.get("usage")
    return Completed(body=data, usage=chat_usage(usage) if isinstance(usage, dict) else None)


async def _stream(response: aiohttp.ClientResponse, deployment: Deployment) -> Streaming:
    progress = _Progress()
    next_events = whole_events(response, progress.read)

    async def close() -> None:
        response.release()

    first = await first_events(next_events, response, deployment)
    if not first.startswith(b"event: response.created"):
        await close()
        raise invalid_answer(deployment, "a stream that does not open with response.created")
    return Streaming(
        first=first,
        rest=_rest(next_events, progress, deployment, close),
        close=close,
        usage=lambda: progress.usage,
    )


async def _rest(
    next_events: Any, progress: _Progress, deployment: Deployment, close: Any
) -> AsyncIterator[bytes]:
    try:
        while not progress.done:
            try:
                events = await next_events()
            except TimeoutError:
                yield progress.failure("upstream_timeout", f"deployment {deployment.id} stalled mid-stream")
                return
            except (aiohttp.ClientError, asyncio.IncompleteReadError):
                message = f"deployment {deployment.id} broke off its stream"
                yield progress.failure("upstream_stream_interrupted", message)
                return
            if not events:
                message = f"deployment {deployment.id} ended its stream early"
                yield progress.failure("upstream_stream_interrupted", message)
                return
            yield events
    finally:
        await close()
