"""The fast path: forward the request to an OpenAI-wire deployment and its answer back as bytes.

Only the model name and credentials change on the way up. Streams are re-framed on SSE event
boundaries but never re-serialised; the one chunk parsed is the usage chunk (requested from the
upstream even when the client did not ask, for accounting, and then dropped again).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
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

DONE_EVENT = b"data: [DONE]"
EVENT_END = b"\n\n"


class PassthroughExecutor:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        health: Any,
        timeout_seconds: float,
        connect_timeout_seconds: float,
    ) -> None:
        self._session = session
        self._health = health  # the Router's health view: failures here cool deployments down there
        self._timeout_seconds = timeout_seconds
        self._connect_timeout_seconds = connect_timeout_seconds

    async def execute(
        self, operation: Operation, body: dict[str, Any], deployment: Deployment
    ) -> Completed | Streaming:
        try:
            return await self._execute(operation, body, deployment)
        except UpstreamError as error:
            if error.retryable:
                self._report_failure(deployment, error)
            raise

    async def _execute(
        self, operation: Operation, body: dict[str, Any], deployment: Deployment
    ) -> Completed | Streaming:
        payload = dict(body)
        payload["model"] = deployment.upstream_model
        streaming = operation.streams and bool(body.get("stream"))
        client_wants_usage = streaming and bool((body.get("stream_options") or {}).get("include_usage"))
        if streaming and not client_wants_usage:
            payload["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        seconds = deployment.timeout or self._timeout_seconds
        timeout = aiohttp.ClientTimeout(
            total=None if streaming else seconds,
            sock_connect=self._connect_timeout_seconds,
            sock_read=seconds,
        )
        url = f"{deployment.api_base}{operation.path}"
        try:
            response = await self._session.post(
                url, data=orjson.dumps(payload), headers=deployment.upstream_headers, timeout=timeout
            )
        except TimeoutError:
            raise upstream_timeout(f"deployment {deployment.id} did not answer in time") from None
        except aiohttp.ClientError as error:
            raise UpstreamError(
                502,
                f"deployment {deployment.id} is unreachable: {type(error).__name__}",
                code="upstream_unreachable",
                retryable=True,
            ) from None
        if response.status >= 400:
            raise await _error_from_response(response, deployment)
        if not streaming:
            try:
                data = await response.read()
            except TimeoutError:
                raise upstream_timeout(f"deployment {deployment.id} did not answer in time") from None
            except aiohttp.ClientError:
                raise UpstreamError(
                    502,
                    f"deployment {deployment.id} broke off its answer",
                    code="upstream_error",
                    retryable=True,
                ) from None
            finally:
                response.release()
            return Completed(body=data, usage=_usage_of(data))
        return await _open_stream(response, deployment, keep_usage=client_wants_usage)

    def _report_failure(self, deployment: Deployment, error: UpstreamError) -> None:
        exception_class = {429: litellm.RateLimitError, 504: litellm.Timeout}.get(
            error.status, litellm.InternalServerError
        )
        exception = exception_class(
            message=error.message, llm_provider=deployment.provider, model=deployment.upstream_model
        )
        self._health.record_failure(deployment.id, exception, error.status)


async def _error_from_response(response: aiohttp.ClientResponse, deployment: Deployment) -> UpstreamError:
    try:
        data = await response.read()
    except (aiohttp.ClientError, TimeoutError):
        data = b""
    finally:
        response.release()
    message = f"deployment {deployment.id} answered {response.status}"
    try:
        detail = orjson.loads(data)["error"]["message"]
        message = f"{message}: {detail}"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        pass
    retry_after = response.headers.get("retry-after")
    seconds = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
    return upstream_error(response.status, message, retry_after=seconds)


def _usage_of(data: bytes) -> dict[str, Any] | None:
    try:
        usage = orjson.loads(data).get("usage")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return usage if isinstance(usage, dict) else None


class _EventFramer:
    """Splits upstream bytes into whole SSE events; reads (and maybe drops) the usage chunk."""

    def __init__(self, keep_usage: bool) -> None:
        self.keep_usage = keep_usage
        self.usage: dict[str, Any] | None = None
        self.done = False
        self._buffer = b""

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        end = self._buffer.rfind(EVENT_END)
        if end < 0:
            return b""
        complete, self._buffer = self._buffer[: end + 2], self._buffer[end + 2 :]
        if b'"usage"' not in complete and DONE_EVENT not in complete:
            return complete  # the common case: plain content chunks, forwarded as they are
        return b"".join(self._inspect(event + EVENT_END) for event in complete.split(EVENT_END) if event)

    def _inspect(self, event: bytes) -> bytes:
        if event.startswith(DONE_EVENT):
            self.done = True
            return event
        if b'"usage"' not in event:
            return event
        try:
            chunk = orjson.loads(event[event.index(b"{") :])
        except (ValueError, orjson.JSONDecodeError):
            return event
        usage = chunk.get("usage") if isinstance(chunk, dict) else None
        if not isinstance(usage, dict):
            return event
        self.usage = usage
        if not self.keep_usage and not chunk.get("choices"):
            return b""
        return event


async def _open_stream(
    response: aiohttp.ClientResponse, deployment: Deployment, keep_usage: bool
) -> Streaming:
    framer = _EventFramer(keep_usage)
    content = response.content

    async def next_events() -> bytes:
        """The next forwardable bytes; b'' at the end of the upstream stream."""
        while True:
            data = await content.readany()
            if not data:
                return b""
            events = framer.feed(data)
            if events:
                return events

    async def close() -> None:
        response.release()

    try:
        first = await next_events()
    except (aiohttp.ClientError, TimeoutError):
        await close()
        raise UpstreamError(
            502, f"deployment {deployment.id} broke off its stream", code="upstream_error", retryable=True
        ) from None
    if not first:
        await close()
        raise UpstreamError(
            502, f"deployment {deployment.id} sent an empty stream", code="upstream_error", retryable=True
        )

    return Streaming(
        first=first,
        rest=_rest(next_events, framer, deployment, close),
        close=close,
        usage=lambda: framer.usage,
    )


async def _rest(
    next_events: Any, framer: _EventFramer, deployment: Deployment, close: Any
) -> AsyncIterator[bytes]:
    try:
        while not framer.done:
            try:
                events = await next_events()
            except TimeoutError:
                yield sse_error_event(upstream_timeout(f"deployment {deployment.id} stalled mid-stream"))
                return
            except (aiohttp.ClientError, asyncio.IncompleteReadError):
                yield sse_error_event(
                    UpstreamError(
                        502,
                        f"deployment {deployment.id} broke off its stream",
                        code="upstream_stream_interrupted",
                        retryable=False,
                    )
                )
                return
            if not events:
                yield sse_error_event(
                    UpstreamError(
                        502,
                        f"deployment {deployment.id} ended its stream early",
                        code="upstream_stream_interrupted",
                        retryable=False,
                    )
                )
                return
            yield events
    finally:
        await close()
