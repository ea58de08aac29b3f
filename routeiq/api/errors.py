"""The OpenAI error envelope, used by every error RouteIQ sends, and the one mapping from the
domain's exceptions (``routeiq.errors``) to it.

The HTTP status decides which exception the OpenAI SDK raises; the body is
``{"error": {"message", "type", "param", "code"}}`` with ``code`` a string or null. The routes'
exception handlers and the middleware layers that answer on their own both go through
``to_api_error``, so a refusal reads the same wherever it is raised.
"""

from __future__ import annotations

import math
from functools import singledispatch

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from routeiq.errors import (
    AuditUnavailable,
    BodyTooLarge,
    GatewayError,
    GuardrailBlocked,
    GuardrailScanLimit,
    KeyRefused,
    MalformedBody,
    ModelNotAllowed,
    NoDeploymentAvailable,
    NoDeploymentCanServe,
    PluginFailed,
    PolicyDenied,
    PolicyUnavailable,
    QuotaExceeded,
    QuotaUnavailable,
    UnknownModel,
    UnknownProfile,
    UpstreamFailed,
)

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


class APIError(GatewayError):
    """An error already in HTTP terms: its status and the envelope's fields. Raised by the routes and
    middleware for what is HTTP's own business (credentials, request validation), and what every
    domain exception becomes in ``to_api_error``."""

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
        self.code = code
        self.param = param
        self.error_type = error_type or _TYPE_BY_STATUS.get(status, "api_error")
        self.headers = headers or {}
        self.denial = status in (401, 403)  # by status here; by class in the domain

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


RATE_LIMIT_CODES = {
    "requests": "requests_limit_exceeded",
    "tokens": "tokens_limit_exceeded",
    "budget": "budget_exceeded",
}
POLICY_RULE_HEADER = "x-routeiq-policy-rule"
_UPSTREAM_TYPE_BY_STATUS = {429: "rate_limit_error", 504: "timeout_error"}


@singledispatch
def to_api_error(error: GatewayError) -> APIError:
    """The status, envelope and headers the client gets for ``error``."""
    raise TypeError(f"no mapping to an API error for {type(error).__name__}")


@to_api_error.register(APIError)
def _as_is(error: APIError) -> APIError:
    return error


@to_api_error.register(KeyRefused)
def _key_refused(error: KeyRefused) -> APIError:
    return APIError(401, error.message, code=error.code)


@to_api_error.register(MalformedBody)
def _malformed_body(error: MalformedBody) -> APIError:
    return bad_request(error.message, code="invalid_json")


@to_api_error.register(BodyTooLarge)
def _body_too_large(error: BodyTooLarge) -> APIError:
    return APIError(413, error.message, code="request_too_large")


@to_api_error.register(ModelNotAllowed)
def _model_not_allowed(error: ModelNotAllowed) -> APIError:
    return APIError(403, error.message, code="model_not_allowed", param="model")


@to_api_error.register(PolicyDenied)
def _policy_denied(error: PolicyDenied) -> APIError:
    return APIError(403, error.message, code="policy_denied", headers={POLICY_RULE_HEADER: error.rule})


@to_api_error.register(PolicyUnavailable)
def _policy_unavailable(error: PolicyUnavailable) -> APIError:
    return service_unavailable(error.message, code="policy_unavailable", retry_after=error.retry_after)


@to_api_error.register(QuotaExceeded)
def _quota_exceeded(error: QuotaExceeded) -> APIError:
    headers = {**error.limit_headers, **retry_after_headers(error.retry_after)}
    if error.hopeless:
        headers["x-should-retry"] = "false"
    error_type = "insufficient_quota" if error.kind == "budget" else "rate_limit_error"
    return APIError(
        429, error.message, code=RATE_LIMIT_CODES[error.kind], error_type=error_type, headers=headers
    )


@to_api_error.register(QuotaUnavailable)
def _quota_unavailable(error: QuotaUnavailable) -> APIError:
    return service_unavailable(error.message, code="quota_unavailable", retry_after=error.retry_after)


@to_api_error.register(AuditUnavailable)
def _audit_unavailable(error: AuditUnavailable) -> APIError:
    return service_unavailable(error.message, code="audit_unavailable", retry_after=error.retry_after)


@to_api_error.register(UnknownModel)
def _unknown_model(error: UnknownModel) -> APIError:
    return APIError(404, error.message, param="model", code="model_not_found")


@to_api_error.register(UnknownProfile)
def _unknown_profile(error: UnknownProfile) -> APIError:
    return bad_request(error.message, param="profile")


@to_api_error.register(NoDeploymentCanServe)
def _no_deployment_can_serve(error: NoDeploymentCanServe) -> APIError:
    return APIError(400, error.message, code="no_capable_deployment", headers=dict(error.routing_headers))


@to_api_error.register(NoDeploymentAvailable)
def _no_deployment_available(error: NoDeploymentAvailable) -> APIError:
    code = "circuit_open" if error.circuit_open else "no_healthy_deployment"
    api_error = service_unavailable(error.message, code=code, retry_after=error.retry_after)
    api_error.headers.update(error.routing_headers)
    return api_error


@to_api_error.register(UpstreamFailed)
def _upstream_failed(error: UpstreamFailed) -> APIError:
    headers = dict(error.routing_headers)
    if error.status == 429:  # retry when the first of them may take a request again
        headers.update(retry_after_headers(error.retry_after or 1.0))
    error_type = error.error_type or _UPSTREAM_TYPE_BY_STATUS.get(error.status, "api_error")
    return APIError(error.status, error.message, code=error.code, error_type=error_type, headers=headers)


@to_api_error.register(GuardrailBlocked)
def _guardrail_blocked(error: GuardrailBlocked) -> APIError:
    return APIError(error.status, error.message, code=error.code)


@to_api_error.register(PluginFailed)
def _plugin_failed(error: PluginFailed) -> APIError:
    return service_unavailable(error.message, "plugin_failed", error.retry_after)


@to_api_error.register(GuardrailScanLimit)
def _guardrail_scan_limit(error: GuardrailScanLimit) -> APIError:
    return APIError(
        413 if error.before else 502,
        error.message,
        code="guardrail_scan_limit",
        headers={"x-should-retry": "false"},
    )


def error_response(error: GatewayError) -> Response:
    """The response for ``error``: for the middleware layers that answer without a route."""
    return to_api_error(error).to_response()


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


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


def store_error_response(exc: Exception) -> Response:
    """The durable store (keys, audit, spend) failed: 503 while it is unreachable, 409 on a conflict.
    Its messages name the driver's error class only, never SQL or a URL."""
    from routeiq.store.database import StoreConflict

    if isinstance(exc, StoreConflict):
        return APIError(409, str(exc), code="store_conflict").to_response()
    return service_unavailable(
        f"the durable store cannot be reached: {exc}", code="store_unavailable", retry_after=5
    ).to_response()


async def _store_error(request: Request, exc: Exception) -> Response:
    return store_error_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    from routeiq.store.database import StoreError  # SQLAlchemy: only once an app is built

    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
