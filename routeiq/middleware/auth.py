"""Establish who is calling, from the credential alone.

The data plane takes ``ROUTEIQ_MASTER_KEY`` (open when unset; startup warns loudly). The control
plane (``/admin/*``) takes only ``ROUTEIQ_ADMIN_KEYS`` and is closed when none is configured: a
data-plane key never opens it. Health and API documentation need no key.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from routeiq.api.errors import APIError

PUBLIC_PREFIXES = ("/_health/",)
PUBLIC_PATHS = frozenset({"/openapi.json", "/docs", "/redoc"})
ADMIN_PREFIX = "/admin"


@dataclass(frozen=True, slots=True)
class Identity:
    kind: str  # "master", "admin" or "anonymous"


ANONYMOUS = Identity("anonymous")
MASTER = Identity("master")
ADMIN = Identity("admin")


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


def _matches(presented: str, keys: list[bytes]) -> bool:
    candidate = presented.encode()
    matched = False
    for key in keys:  # compare with every key so timing says nothing about which one matched
        matched |= hmac.compare_digest(candidate, key)
    return matched


class AuthMiddleware:
    def __init__(self, app: ASGIApp, master_key: str | None, admin_keys: list[str]) -> None:
        self.app = app
        self._master = [master_key.encode()] if master_key else []
        self._admin = [key.encode() for key in admin_keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        try:
            identity = self._identify(path, scope)
        except APIError as error:
            await error.to_response()(scope, receive, send)
            return
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)

    def _identify(self, path: str, scope: Scope) -> Identity:
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return ANONYMOUS
        key = presented_key(scope)
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            if not self._admin:
                raise APIError(
                    403, "the control plane is closed: no admin key is configured", code="admin_disabled"
                )
            if key is None or not _matches(key, self._admin):
                raise APIError(401, "a valid admin key is required", code="invalid_admin_key")
            return ADMIN
        if not self._master:
            return ANONYMOUS
        if key is None:
            raise APIError(401, "missing API key: send Authorization: Bearer <key>", code="missing_api_key")
        if not _matches(key, self._master):
            raise APIError(401, "invalid API key", code="invalid_api_key")
        return MASTER
