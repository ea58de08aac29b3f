"""The HTTP call every raw executor makes (OpenAI, Anthropic and Responses wires alike): post the
payload, and turn a deployment that does not answer, answers an error status or breaks off its
answer into an ``UpstreamError`` in RouteIQ's words."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import orjson

from routeiq.executors.base import UpstreamError, upstream_error, upstream_timeout
from routeiq.routing.deployments import Deployment


def client_timeout(
    deployment: Deployment, default_seconds: float, connect_seconds: float, streaming: bool
) -> aiohttp.ClientTimeout:
    """A whole answer must arrive within the deployment's timeout; a stream may take as long as it
    keeps sending, with no gap longer than that. (A whole answer gets no gap timeout: it could not
    fire before the total one, and aiohttp would move its timer on every packet read.)"""
    seconds = deployment.timeout or default_seconds
    if streaming:
        return aiohttp.ClientTimeout(total=None, sock_connect=connect_seconds, sock_read=seconds)
    return aiohttp.ClientTimeout(total=seconds, sock_connect=connect_seconds)


async def post(
    session: aiohttp.ClientSession,
    deployment: Deployment,
    url: str,
    payload: bytes,
    headers: Mapping[str, str],
    limits: aiohttp.ClientTimeout,
) -> aiohttp.ClientResponse:
    """The deployment's response, once its status says it is answering (below 400)."""
    try:
        response = await session.post(url, data=payload, headers=headers, timeout=limits)
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
        raise await error_from_response(response, deployment)
    return response


async def read_whole(response: aiohttp.ClientResponse, deployment: Deployment) -> bytes:
    try:
        return await response.read()
    except TimeoutError:
        raise upstream_timeout(f"deployment {deployment.id} did not answer in time") from None
    except aiohttp.ClientError:
        raise UpstreamError(
            502, f"deployment {deployment.id} broke off its answer", code="upstream_error", retryable=True
        ) from None
    finally:
        response.release()


async def error_from_response(response: aiohttp.ClientResponse, deployment: Deployment) -> UpstreamError:
    """An error status, with the upstream's own message (OpenAI and Anthropic both put it at
    ``error.message``) and its ``retry-after``."""
    try:
        data = await response.read()
    except (aiohttp.ClientError, TimeoutError):
        data = b""
    finally:
        response.release()
    message = f"deployment {deployment.id} answered {response.status}"
    with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
        message = f"{message}: {orjson.loads(data)['error']['message']}"
    retry_after = response.headers.get("retry-after")
    seconds = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
    return upstream_error(response.status, message, retry_after=seconds)


EVENT_END = b"\n\n"


def whole_events(
    response: aiohttp.ClientResponse, seen: Callable[[bytes], None]
) -> Callable[[], Awaitable[bytes]]:
    """A reader of a server-sent-event stream that returns whole events only (``seen`` looks at
    each batch first); b'' at the end of the upstream stream."""
    content = response.content
    buffer = b""

    async def next_events() -> bytes:
        nonlocal buffer
        while True:
            data = await content.readany()
            if not data:
                return b""
            buffer += data
            end = buffer.rfind(EVENT_END)
            if end >= 0:
                events, buffer = buffer[: end + 2], buffer[end + 2 :]
                seen(events)
                return events

    return next_events


async def first_events(
    next_events: Callable[[], Awaitable[bytes]], response: aiohttp.ClientResponse, deployment: Deployment
) -> bytes:
    """A stream's opening; one broken before it (nothing reached the client) may be retried."""
    try:
        return await next_events()
    except (aiohttp.ClientError, TimeoutError):
        response.release()
        raise UpstreamError(
            502, f"deployment {deployment.id} broke off its stream", code="upstream_error", retryable=True
        ) from None
