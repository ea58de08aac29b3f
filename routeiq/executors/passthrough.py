"""The fast path: forward the request to an OpenAI-wire deployment and its answer back as bytes.

Only the model name and credentials change on the way up. Streams are re-framed on SSE event
boundaries but never re-serialised; the chunks parsed are the first events (a 200 whose stream
opens with garbage or an error object is a failed attempt, retried elsewhere), the usage chunk
(requested from the upstream even when the client did not ask, for accounting, and then dropped
again) and any event that looks like an error object. A whole answer is parsed once anyway for its
usage, which is also where a 200 that is not JSON, or is an error object, is caught.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
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
    upstream_timeout,
)
from routeiq.executors.upstream_http import EVENT_END, client_timeout, first_events, post, read_whole
from routeiq.routing.deployments import Deployment

DONE_EVENT = b"data: [DONE]"


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
                report_failure(self._health, deployment, error)
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
        timeout = client_timeout(deployment, self._timeout_seconds, self._connect_timeout_seconds, streaming)
        url = f"{deployment.api_base}{operation.path}"
        data = orjson.dumps(payload)
        response = await post(self._session, deployment, url, data, deployment.upstream_headers, timeout)
        if not streaming:
            answer = await read_whole(response, deployment)
            return Completed(body=answer, usage=_answer_usage(answer, deployment))
        return await _open_stream(response, deployment, keep_usage=client_wants_usage)


def _answer_usage(data: bytes, deployment: Deployment) -> dict[str, Any] | None:
    """The usage of a whole answer; raises when the 200 is not an answer at all."""
    try:
        answer = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise invalid_answer(deployment, "a body that is not JSON") from None
    if not isinstance(answer, dict):
        raise invalid_answer(deployment, "a body that is not a JSON object")
    detail = error_object_detail(answer)
    if detail is not None:
        raise invalid_answer(deployment, detail)
    usage = answer.get("usage")
    return usage if isinstance(usage, dict) else None


def _check_opening(events: bytes, deployment: Deployment) -> None:
    """The first events of a stream must be JSON chunks, not garbage, an error object or the end."""
    for event in events.split(EVENT_END):
        if event.startswith(DONE_EVENT):
            raise invalid_answer(deployment, "an empty stream")
        if not event.startswith(b"data:"):
            continue  # comments, other SSE fields
        try:
            chunk = orjson.loads(event[5:])
        except orjson.JSONDecodeError:
            raise invalid_answer(deployment, "a stream event that is not JSON") from None
        detail = error_object_detail(chunk)
        if detail is not None:
            raise invalid_answer(deployment, detail)
        return  # one good chunk opens the answer


class _EventFramer:
    """Splits upstream bytes into whole SSE events; reads (and maybe drops) the usage chunk."""

    def __init__(self, keep_usage: bool) -> None:
        self.keep_usage = keep_usage
        self.usage: dict[str, Any] | None = None
        self.done = False
        self.error: str | None = None  # an upstream error event ended the stream
        self._buffer = b""

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        end = self._buffer.rfind(EVENT_END)
        if end < 0:
            return b""
        complete, self._buffer = self._buffer[: end + 2], self._buffer[end + 2 :]
        if b'"usage"' not in complete and DONE_EVENT not in complete and b'"error"' not in complete:
            return complete  # the common case: plain content chunks, forwarded as they are
        # (a quote inside a JSON string is escaped, so '"error"' is a key or a bare "error" value)
        forwarded = []
        for event in complete.split(EVENT_END):
            if event and self.error is None:
                forwarded.append(self._inspect(event + EVENT_END))
        return b"".join(forwarded)

    def _inspect(self, event: bytes) -> bytes:
        if event.startswith(DONE_EVENT):
            self.done = True
            return event
        if b'"error"' in event and event.startswith(b"data:"):
            try:
                detail = error_object_detail(orjson.loads(event[5:]))
            except orjson.JSONDecodeError:
                detail = None
            if detail is not None:
                self.error = detail  # dropped here; the stream ends with RouteIQ's error event
                self.done = True
                return b""
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
            if events or framer.error is not None:
                return events

    async def close() -> None:
        response.release()

    first = await first_events(next_events, response, deployment)
    if framer.error is not None:  # nothing has reached the client yet: another deployment may answer
        await close()
        raise invalid_answer(deployment, framer.error)
    if not first:
        await close()
        raise UpstreamError(
            502, f"deployment {deployment.id} sent an empty stream", code="upstream_error", retryable=True
        )
    try:
        _check_opening(first, deployment)
    except UpstreamError:
        await close()
        raise

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
        while True:
            if framer.error is not None:
                yield sse_error_event(
                    UpstreamError(
                        502,
                        f"deployment {deployment.id} sent {framer.error} mid-stream",
                        code="upstream_stream_interrupted",
                        retryable=False,
                    )
                )
                return
            if framer.done:
                return
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
            if not events and framer.error is None:
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
