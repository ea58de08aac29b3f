"""What an executor returns, and how it fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from routeiq.api.errors import error_body
from routeiq.routing.deployments import Deployment


class Operation(Enum):
    """An OpenAI API operation: its upstream path and whether it can stream."""

    CHAT = ("/chat/completions", True)
    COMPLETIONS = ("/completions", True)
    EMBEDDINGS = ("/embeddings", False)

    def __init__(self, path: str, streams: bool) -> None:
        self.path = path
        self.streams = streams


@dataclass(slots=True)
class Completed:
    """A whole JSON response body, ready to send."""

    body: bytes
    usage: dict[str, Any] | None


@dataclass(slots=True)
class Streaming:
    """An SSE stream whose first event already arrived (so earlier failures could still be retried).

    ``rest`` yields the remaining SSE-framed bytes. It never raises: a failure after the first byte
    becomes a ``data: {"error": ...}`` event and the end of the stream. ``usage()`` answers once the
    stream has passed its usage chunk.
    """

    first: bytes
    rest: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]
    usage: Callable[[], dict[str, Any] | None]


class UpstreamError(Exception):
    """A failed attempt. ``retryable`` says whether another deployment might succeed."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        retryable: bool,
        error_type: str = "api_error",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.retryable = retryable
        self.error_type = error_type
        self.retry_after = retry_after


# Upstream statuses that are the caller's fault: passed through, never retried elsewhere.
CALLER_FAULT_STATUSES = frozenset({400, 413, 415, 422})


def upstream_error(status: int, message: str, retry_after: float | None = None) -> UpstreamError:
    """Classify an upstream HTTP status the way the client should see it."""
    if status in CALLER_FAULT_STATUSES:
        return UpstreamError(
            status,
            message,
            code="upstream_rejected_request",
            retryable=False,
            error_type="invalid_request_error",
        )
    if status == 429:
        return UpstreamError(
            429,
            message,
            code="upstream_rate_limited",
            retryable=True,
            error_type="rate_limit_error",
            retry_after=retry_after,
        )
    if status in (408, 504):
        return upstream_timeout(message)
    return UpstreamError(502, message, code="upstream_error", retryable=True)


def upstream_timeout(message: str) -> UpstreamError:
    return UpstreamError(504, message, code="upstream_timeout", retryable=True, error_type="timeout_error")


def invalid_answer(deployment: Deployment, detail: str) -> UpstreamError:
    """A 200 that is no answer (not JSON, or an error object): the deployment failed, another may not."""
    return UpstreamError(
        502,
        f"deployment {deployment.id} answered 200 with {detail}",
        code="upstream_invalid_response",
        retryable=True,
    )


def error_object_detail(data: Any) -> str | None:
    """The message of an OpenAI-style ``{"error": ...}`` body, or None when ``data`` is not one."""
    if not isinstance(data, dict) or not data.get("error"):
        return None
    error = data["error"]
    message = error.get("message") if isinstance(error, dict) else error
    return f"an error instead of an answer: {message}" if message else "an error instead of an answer"


def report_failure(health: Any, deployment: Deployment, error: UpstreamError) -> None:
    """Feed a failure LiteLLM did not see itself into its cooldown state (it counts only its own
    exception classes)."""
    import litellm  # loaded by the runtime long before; kept out of create_app's imports

    exception_class = {429: litellm.RateLimitError, 504: litellm.Timeout}.get(
        error.status, litellm.InternalServerError
    )
    exception = exception_class(
        message=error.message, llm_provider=deployment.provider, model=deployment.upstream_model
    )
    health.record_failure(deployment.id, exception, error.status)


def sse_error_event(error: UpstreamError) -> bytes:
    body = error_body(error.message, error.error_type, error.code, None)
    return b"data: " + orjson.dumps(body) + b"\n\n"
