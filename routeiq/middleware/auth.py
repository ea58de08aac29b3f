"""Establish who is calling, from the credential alone.

The data plane takes ``ROUTEIQ_MASTER_KEY`` or a virtual key issued through ``/admin/keys``. With no
master key it is open (startup warns loudly), but a credential shaped like a virtual key (``sk-riq-``)
that is revoked, expired, rotated away or unknown is still refused; any other credential, or none,
is anonymous there.
The control plane (``/admin/*``) takes only ``ROUTEIQ_ADMIN_KEYS`` and is closed when none is
configured: a data-plane key never opens it; a failed attempt there is audited (``admin.auth_failed``,
rate-limited per source). The admin login call (``POST /admin/auth/verify``) is the exception: its
key is its body, checked (and guessing limited) by its route (``routeiq.governance.admin_login``).
``/metrics`` is open, admin-only or data-plane per ``metrics_auth``. Health
and API documentation need no key.

Every governed request leaves here with a ``GovernedCall`` in ``scope["state"]`` carrying the
identity; nothing the client sends besides the key (``X-Team-ID``, a ``user`` field) changes it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeiq.api.errors import APIError, service_unavailable, to_api_error
from routeiq.errors import KeyRefused
from routeiq.governance.auth_failures import FailedAuthRecorder
from routeiq.governance.call import new_call
from routeiq.governance.identity import ANONYMOUS, MASTER, Identity
from routeiq.governance.keys import looks_like_virtual_key
from routeiq.middleware.paths import ADMIN_PATH, METRICS_PATH, is_admin, is_public
from routeiq.runtime_handle import RuntimeHandle

logger = logging.getLogger("routeiq.auth")

ADMIN_PREFIX = ADMIN_PATH  # which paths are public, admin or metrics: routeiq.middleware.paths
ADMIN_LOGIN_PATH = ADMIN_PATH + "/auth/verify"  # routeiq.api.admin.auth

MetricsAuth = Literal["open", "admin", "data"]


def presented_key(scope: Scope) -> str | None:
    """The key from ``Authorization: Bearer``, ``x-api-key`` or ``api-key``."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name in (b"x-api-key", b"api-key") and value:
            return value.decode("latin-1").strip()
    return None


def _matching(presented: str, keys: list[bytes]) -> bytes | None:
    candidate = presented.encode()
    found = None
    for key in keys:  # compare with every key so timing says nothing about which one matched
        if hmac.compare_digest(candidate, key):
            found = key
    return found


def admin_identity(key: bytes) -> Identity:
    """Admin keys are told apart in the audit log by a fingerprint, never by the key."""
    return Identity("admin", key_id="admin-" + hashlib.sha256(key).hexdigest()[:8])


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        master_key: str | None,
        admin_keys: list[str],
        metrics_auth: MetricsAuth = "open",
        *,
        runtime: RuntimeHandle,
    ) -> None:
        self.app = app
        self._runtime = runtime
        self._master = [master_key.encode()] if master_key else []
        self._admin = [key.encode() for key in admin_keys]
        self._metrics_auth = metrics_auth
        self._failures = FailedAuthRecorder()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        public = is_public(path)
        if public or (path == METRICS_PATH and self._metrics_auth == "open"):
            await self.app(scope, receive, send)
            return
        try:
            identity = await self._identify(path, scope)
        except APIError as error:
            await error.to_response()(scope, receive, send)
            return
        call = new_call(scope, identity)

        async def send_with_call_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = call.with_headers(message)
            await send(message)

        await self.app(scope, receive, send_with_call_headers)

    async def _identify(self, path: str, scope: Scope) -> Identity:
        key = presented_key(scope)
        if is_admin(path):
            if path == ADMIN_LOGIN_PATH and self._admin:
                return ANONYMOUS  # the login: its route checks the key in the body
            return await self._admin_only(path, scope, key)
        if path == METRICS_PATH:
            if self._metrics_auth == "admin":
                return await self._admin_only(path, scope, key)
            # "data": an admin key (the operator's) or whatever the data plane accepts.
            admin_key = _matching(key, self._admin) if key is not None and self._admin else None
            if admin_key is not None:
                return admin_identity(admin_key)
        return await self._data_plane(scope, key)

    async def _admin_only(self, path: str, scope: Scope, key: str | None) -> Identity:
        if not self._admin:
            where = (
                "the control plane is"
                if path.startswith(ADMIN_PREFIX)
                else f"{path} (metrics_auth: admin) is"
            )
            raise APIError(
                403,
                f"{where} closed: no admin key is configured "
                "(set ROUTEIQ_ADMIN_KEYS, comma-separated, and restart to open it)",
                code="admin_disabled",
            )
        admin_key = _matching(key, self._admin) if key is not None else None
        if admin_key is None:
            await self._audit_failure(scope, key)
            raise APIError(401, "a valid admin key is required", code="invalid_admin_key")
        return admin_identity(admin_key)

    async def _audit_failure(self, scope: Scope, key: str | None) -> None:
        runtime = self._runtime.started
        if runtime is None:  # still starting: nothing to write to yet
            return
        client = scope.get("client")
        await self._failures.failed(
            runtime.audit_log,
            source=client[0] if client else "unknown",
            key=key,
            route=scope["path"],
            method=scope["method"],
            request_id=scope.get("state", {}).get("request_id"),
        )

    async def _data_plane(self, scope: Scope, key: str | None) -> Identity:
        if key is None:
            if self._master:
                raise APIError(
                    401, "missing API key: send Authorization: Bearer <key>", code="missing_api_key"
                )
            return ANONYMOUS
        if self._master and _matching(key, self._master) is not None:
            return MASTER
        try:
            identity = await self._runtime.get().keys.authenticate(key)
        except KeyRefused as refused:
            raise to_api_error(refused) from None
        except Exception as error:  # the key store is down: say so, never let an unknown key in
            logger.warning("virtual key lookup failed: %s", type(error).__name__)
            raise service_unavailable(
                "API keys cannot be checked right now", code="key_store_unavailable", retry_after=1.0
            ) from None
        if identity is not None:
            return identity
        if self._master or looks_like_virtual_key(key):
            # A RouteIQ key nobody holds (rotated away, mistyped, from another deployment) is refused
            # even on an open data plane: its holder expects their limits, and must learn it is dead.
            raise APIError(401, "invalid API key", code="invalid_api_key")
        # Open data plane: a placeholder that was never a RouteIQ key (the OpenAI SDK insists on
        # sending something, e.g. api_key="anything") is no key at all.
        return ANONYMOUS
