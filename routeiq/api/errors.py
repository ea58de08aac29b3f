"""The OpenAI error envelope, used by every error RouteIQ sends.

The HTTP status decides which exception the OpenAI SDK raises; the body is
``{"error": {"message", "type", "param", "code"}}`` with ``code`` a string or null.
"""

from __future__ import annotations

import math

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

MAX_RETRY_AFTER_SECONDS = 120
BODY_NOT_PARSED = frozenset({"model_attributes_type", "dict_type", "missing"})

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class APIError(Exception):
    """An error the client should see, with its status and the envelope's fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.error_type = error_type or _TYPE_BY_STATUS.get(status, "api_error")
        self.headers = headers or {}

    def to_body(self) -> dict[str, object]:
        return error_body(self.message, self.error_type, self.code, self.param)

    def to_response(self) -> Response:
        return Response(
            orjson.dumps(self.to_body()),
            status_code=self.status,
            headers=self.headers,
            media_type="application/json",
        )


def error_body(message: str, error_type: str, code: str | None, param: str | None) -> dict[str, object]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def retry_after_headers(seconds: float) -> dict[str, str]:
    """``retry-after`` (whole seconds, at least 1) and ``retry-after-ms``, capped at 120 s."""
    seconds = min(max(seconds, 0.001), MAX_RETRY_AFTER_SECONDS)
    return {
        "retry-after": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, round(seconds * 1000))),
    }


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def service_unavailable(message: str, code: str, retry_after: float) -> APIError:
    return APIError(
        503,
        message,
        code=code,
        error_type="service_unavailable_error",
        headers=retry_after_headers(retry_after),
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return exc.to_response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    error = APIError(exc.status_code, str(exc.detail), code=code, headers=dict(exc.headers or {}))
    return error.to_response()


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    if tuple(first["loc"]) == ("body",) and first.get("type") in BODY_NOT_PARSED:
        # FastAPI parses a body as JSON only when the content-type says so (a CSRF guard).
        return bad_request(
            "the request body must be a JSON object sent with content-type: application/json",
            code="invalid_json",
        ).to_response()
    # The field as the client knows it: "offset", not FastAPI's "query.offset".
    param = ".".join(str(part) for part in first["loc"] if part not in ("body", "query", "path")) or None
    return bad_request(f"{param}: {first['msg']}" if param else str(first["msg"]), param=param).to_response()


async def _store_error(request: Request, exc: Exception) -> Response:
    """The durable store (keys, audit, spend) failed: 503 while it is unreachable, 409 on a conflict.
    Its messages name the driver's error class only, never SQL or a URL."""
    from routeiq.store.database import StoreConflict

    if isinstance(exc, StoreConflict):
        return APIError(409, str(exc), code="store_conflict").to_response()
    return service_unavailable(
        f"the durable store cannot be reached: {exc}", code="store_unavailable", retry_after=5
    ).to_response()


def install_error_handlers(app: FastAPI) -> None:
    from routeiq.store.database import StoreError  # SQLAlchemy: only once an app is built

    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
