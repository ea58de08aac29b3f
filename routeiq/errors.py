"""What governance, routing, plugins and executors raise when a request is refused or fails.

Each exception says what happened in the domain's own terms (which limit, which rule, which
deployments failed); none knows about HTTP. ``routeiq.api.errors`` is the one place that turns
them into a status, the OpenAI error envelope and headers, for the routes' exception handlers and
for the middleware layers that answer on their own alike. Importing this module imports nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

LimitKind = Literal["requests", "tokens", "budget"]


class GatewayError(Exception):
    """Base of every error a client is told about."""

    # Whether the caller was refused permission (the audit log records ``denied``, not ``failure``).
    denial: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Governance ------------------------------------------------------------------------------------


class KeyRefused(GatewayError):
    """The presented virtual key is known but may not be used; ``code`` says why (revoked, expired)."""

    denial = True

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class MalformedBody(GatewayError):
    """The request body is not a JSON object."""


class BodyTooLarge(GatewayError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


class ModelNotAllowed(GatewayError):
    """The key's ``allowed_groups``/``allowed_models`` do not reach the requested model."""

    denial = True


class PolicyDenied(GatewayError):
    denial = True

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"denied by policy rule {rule!r}: {reason}")
        self.rule = rule


class PolicyUnavailable(GatewayError):
    """Judging failed and the policy fails closed."""

    retry_after = 1.0

    def __init__(self) -> None:
        super().__init__("the policy cannot be evaluated right now")


class QuotaExceeded(GatewayError):
    """A reservation was refused: ``kind`` of the refused limit, the limits' ``x-ratelimit-*``
    values, when it resets, and whether waiting can help at all (``hopeless``: a budget, or a call
    bigger than the whole limit)."""

    def __init__(
        self,
        message: str,
        kind: LimitKind,
        limit_headers: dict[str, str],
        retry_after: float,
        hopeless: bool,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.limit_headers = limit_headers
        self.retry_after = retry_after
        self.hopeless = hopeless


class QuotaUnavailable(GatewayError):
    """The shared quota store is down and quotas fail closed."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("quota state is unavailable; try again shortly")
        self.retry_after = retry_after


class AuditUnavailable(GatewayError):
    """A control-plane action cannot be recorded and the audit trail fails closed."""

    retry_after = 5.0

    def __init__(self, action: str) -> None:
        super().__init__(f"{action} refused: the audit log cannot be written")
        self.action = action


# Routing and executors --------------------------------------------------------------------------


class UnknownModel(GatewayError):
    def __init__(self, model: str, available: Iterable[str]) -> None:
        super().__init__(f"the model {model!r} does not exist; available: {', '.join(available)}")
        self.model = model


class UnknownProfile(GatewayError):
    def __init__(self, profile: str, valid: list[str]) -> None:
        super().__init__(f"unknown routing profile {profile!r}; valid: {valid}")


class NoDeploymentCanServe(GatewayError):
    """No deployment of the group can take this request (context window, capabilities).
    ``routing_headers``: the ``x-routeiq-*`` account of what routing tried."""

    def __init__(self, message: str, routing_headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.routing_headers = routing_headers or {}


class NoDeploymentAvailable(GatewayError):
    """Nothing could even be tried: every deployment cooling down, failed already or circuit-open."""

    def __init__(
        self,
        message: str,
        retry_after: float,
        circuit_open: bool = False,
        routing_headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.circuit_open = circuit_open
        self.routing_headers = routing_headers or {}


class UpstreamFailed(GatewayError):
    """The deployments tried failed: with the upstream's own status, code and error type when they
    agree (or one refused the request as the client's fault), else a 502 ``upstream_error``.
    ``retry_after`` is when a rate-limited upstream takes a request again; ``error_type`` the
    upstream's own, None when the status alone says it."""

    def __init__(
        self,
        message: str,
        status: int,
        code: str,
        error_type: str | None = None,
        retry_after: float | None = None,
        routing_headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.error_type = error_type
        self.retry_after = retry_after
        self.routing_headers = routing_headers or {}


# Plugins ---------------------------------------------------------------------------------------


class GuardrailBlocked(GatewayError):
    """Raised by a plugin hook to refuse the request: a 400 or 403 whose error code names the
    guardrail (re-exported by ``routeiq.plugins.base``, where plugin authors find it)."""

    def __init__(self, status: Literal[400, 403], code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class PluginFailed(GatewayError):
    """A plugin whose failure mode is ``abort`` failed or timed out."""

    retry_after = 1.0

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(f"plugin {plugin!r} {reason}")
        self.plugin = plugin


class GuardrailScanLimit(GatewayError):
    """An ``abort`` guardrail was handed more text than it checks (``max_scan_chars``): the request
    is too long before the call (``before``), the answer after it. A retry cannot help."""

    def __init__(self, plugin: str, chars: int, limit: int, before: bool) -> None:
        what = "request" if before else "answer"
        super().__init__(
            f"the {what}'s text ({chars} characters) is longer than guardrail {plugin!r} checks ({limit})"
        )
        self.plugin = plugin
        self.before = before
