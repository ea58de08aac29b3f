"""The fast path for Anthropic's Messages API: a Messages call forwarded as sent to a deployment that
speaks the Anthropic wire (``anthropic/...``), and its answer back as bytes.

Only the model name and the credential change on the way up (the deployment's ``x-api-key``
replaces the client's; ``anthropic-version`` and ``anthropic-beta`` are the client's). The answer
is read for its usage alone (``message_start`` and ``message_delta`` of a stream), reported in chat
terms (``prompt_tokens`` counts cache reads and writes too) so quotas, costs and the ledger settle
the real usage. A stream is re-framed on event boundaries but never re-serialised; one that breaks
off ends with Anthropic's ``event: error``.

A ``MessagesCall`` is what the dispatcher's attempt loop asks (``NativeCall``): it serves the
Anthropic-wire deployments the strategy picks; any other deployment gets the chat translation,
fitted to it (``routeiq.translate.chat_targets``: ``thinking`` only to a model that reasons...).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson

from routeiq.executors.base import (
    Completed,
    Streaming,
    UpstreamError,
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
from routeiq.translate.chat_targets import ChatExtras, fit_chat_body

ANTHROPIC_BASE = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


def messages_url(deployment: Deployment, suffix: str = "") -> str:
    """The deployment's Messages endpoint (LiteLLM's reading of ``api_base``: a host, a ``/v1`` base
    or the endpoint itself), plus ``suffix`` (``/count_tokens``)."""
    return _messages_url(deployment.api_base, suffix)


@functools.lru_cache(maxsize=256)  # (a few deployments, asked on every call)
def _messages_url(api_base: str | None, suffix: str) -> str:
    base = (api_base or ANTHROPIC_BASE).rstrip("/")
    if base.endswith("/v1/messages"):
        return base + suffix
    if base.endswith("/v1"):
        return f"{base}/messages{suffix}"
    return f"{base}/v1/messages{suffix}"


def upstream_headers(deployment: Deployment, client_headers: Mapping[str, str]) -> dict[str, str]:
    """The deployment's headers (its key) with the client's Anthropic version and betas."""
    forwarded = {name: value for name in FORWARDED_HEADERS if (value := client_headers.get(name))}
    return {"anthropic-version": DEFAULT_VERSION, **deployment.upstream_headers, **forwarded}


def forwarded_headers(raw_headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The client's Anthropic headers that go upstream, from the ASGI scope's raw list in one pass
    (cheaper than asking a parsed header map for each by name)."""
    return {
        name.decode(): value.decode("latin-1")
        for name, value in raw_headers
        if name in _FORWARDED_RAW and value
    }


_FORWARDED_RAW = frozenset(name.encode() for name in FORWARDED_HEADERS)


def token_count(value: Any) -> int:
    """A token count as reported, or 0 for anything that is not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def chat_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic usage in chat terms, as every other layer reads usage."""
    cached = token_count(usage.get("cache_read_input_tokens"))
    written = token_count(usage.get("cache_creation_input_tokens"))
    prompt = token_count(usage.get("input_tokens")) + cached + written
    completion = token_count(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def error_event(message: str) -> bytes:
    data = {"type": "error", "error": {"type": "api_error", "message": message}}
    return b"event: error\ndata: " + orjson.dumps(data) + EVENT_END


class _Usage:
    """The usage a Messages stream reports: input in ``message_start``, totals in ``message_delta``."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}
        self.done = False
        self.failed = False

    def read(self, events: bytes) -> None:
        for event in events.split(EVENT_END):
            if event.startswith(b"event: error"):
                self.failed = self.done = True
            elif event.startswith(b"event: message_stop"):
                self.done = True
            elif event.startswith((b"event: message_start", b"event: message_delta")):
                self._read_usage(event)

    def _read_usage(self, event: bytes) -> None:
        try:  # the bytes go on as they are; an event that cannot be read just reports no usage
            data = orjson.loads(event[event.index(b"data:") + 5 :])
        except (ValueError, orjson.JSONDecodeError):
            return
        holder = data.get("message") if isinstance(data, dict) and "message" in data else data
        usage = holder.get("usage") if isinstance(holder, dict) else None
        if isinstance(usage, dict):
            self.seen.update({key: value for key, value in usage.items() if isinstance(value, int)})

    def chat(self) -> dict[str, Any] | None:
        return chat_usage(self.seen) if self.seen else None


class MessagesCall:
    """One Messages request: as the client sent it, for the Anthropic-wire deployments that may
    serve it (``body``; None when only the translation may go), and its chat translation's extras."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        health: Any,
        body: Mapping[str, Any] | None,
        client_headers: Mapping[str, str],
        timeout_seconds: float,
        connect_timeout_seconds: float,
        chat_body: Mapping[str, Any],
    ) -> None:
        self._session = session
        self._health = health  # the Router's health view: failures here cool deployments down there
        self._body = body
        self._client_headers = client_headers
        self._timeout_seconds = timeout_seconds
        self._connect_timeout_seconds = connect_timeout_seconds
        self._chat_body = chat_body
        self._chat_extras: ChatExtras | None = None  # read on the first translated attempt only
        self.answered = False  # by a deployment of its own wire: the answer is Anthropic's already
        self.dropped: tuple[str, ...] = ()  # what the last translated attempt's deployment could not take

    def serves(self, deployment: Deployment) -> bool:
        return self._body is not None and deployment.speaks_anthropic

    def chat_body_for(self, deployment: Deployment, body: dict[str, Any]) -> dict[str, Any]:
        if self._chat_extras is None:
            self._chat_extras = ChatExtras.of(self._chat_body)
        if not self._chat_extras.any and deployment.supports_reasoning is not True:
            return body
        fitted, self.dropped = fit_chat_body(body, self._chat_extras, deployment)
        return fitted

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
        assert self._body is not None  # (serves() said so)
        payload = {**self._body, "model": deployment.upstream_model}
        payload.pop("routeiq", None)
        streaming = bool(payload.get("stream"))
        timeout = client_timeout(deployment, self._timeout_seconds, self._connect_timeout_seconds, streaming)
        headers = upstream_headers(deployment, self._client_headers)
        data = orjson.dumps(payload)
        response = await post(self._session, deployment, messages_url(deployment), data, headers, timeout)
        if not streaming:
            return await _whole(response, deployment)
        return await _stream(response, deployment)


async def _whole(response: aiohttp.ClientResponse, deployment: Deployment) -> Completed:
    data = await read_whole(response, deployment)
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise invalid_answer(deployment, "a body that is not JSON") from None
    if not isinstance(message, dict) or message.get("type") != "message":
        raise invalid_answer(deployment, "a body that is not a message")
    usage = message.get("usage")
    return Completed(body=data, usage=chat_usage(usage) if isinstance(usage, dict) else None)


async def _stream(response: aiohttp.ClientResponse, deployment: Deployment) -> Streaming:
    usage = _Usage()
    next_events = whole_events(response, usage.read)

    async def close() -> None:
        response.release()

    first = await first_events(next_events, response, deployment)
    if not first.startswith(b"event: message_start"):  # nothing sent yet: another deployment may answer
        await close()
        detail = "an error event" if usage.failed else "a stream that is not a message"
        raise invalid_answer(deployment, detail)
    return Streaming(
        first=first, rest=_rest(next_events, usage, deployment, close), close=close, usage=usage.chat
    )


async def _rest(next_events: Any, usage: _Usage, deployment: Deployment, close: Any) -> AsyncIterator[bytes]:
    try:
        while not usage.done:
            try:
                events = await next_events()
            except TimeoutError:
                yield error_event(f"deployment {deployment.id} stalled mid-stream")
                return
            except (aiohttp.ClientError, asyncio.IncompleteReadError):
                yield error_event(f"deployment {deployment.id} broke off its stream")
                return
            if not events:
                yield error_event(f"deployment {deployment.id} ended its stream early")
                return
            yield events
    finally:
        await close()
