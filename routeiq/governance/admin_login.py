"""The admin login (``POST /admin/auth/verify``): is this key an admin key? Limited against guessing.

The login call carries its key in the body, so ``AuthMiddleware`` lets it through without one; this
is where the key is checked. A source address gets ``failures_per_minute`` wrong keys per clock
minute, counted in the StateStore (so across every worker and replica; per worker while Redis is
away), after which every attempt from it, right or wrong, is refused with 429 until the minute ends.
Failures are audited like any failed admin authentication (``admin.auth_failed``, bounded per
source: ``auth_failures.py``), a success as ``admin.login``; neither record holds the key.
"""

from __future__ import annotations

import hmac
import logging
import math
import time

from routeiq.api.errors import APIError, retry_after_headers
from routeiq.governance.auth_failures import FailedAuthRecorder
from routeiq.governance.identity import Identity
from routeiq.middleware.auth import admin_identity
from routeiq.state.base import StateStore, StateUnavailable, Window
from routeiq.store.audit import AuditRepository
from routeiq.store.records import AuditRecord

logger = logging.getLogger("routeiq.auth")

FAILURES_KEY = "login:failed:{}"
LOGIN_ACTION = "admin.login"


class AdminLogin:
    def __init__(
        self,
        admin_keys: list[str],
        store: StateStore,
        audit_log: AuditRepository,
        failures_per_minute: int,
    ) -> None:
        self._keys = [key.encode() for key in admin_keys]
        self._store = store
        self._audit_log = audit_log
        self._limit = failures_per_minute
        self._failures = FailedAuthRecorder()

    async def verify(self, key: str, *, source: str, route: str, request_id: str | None) -> Identity:
        """The admin identity ``key`` stands for; ``APIError`` 401 when it is none, 429 while
        ``source`` is over its failures."""
        counter = FAILURES_KEY.format(source)
        if await self._failures_so_far(counter) >= self._limit:
            raise APIError(
                429,
                "too many failed admin logins from this address; wait for the next minute",
                code="too_many_login_failures",
                error_type="rate_limit_error",
                headers=retry_after_headers(_seconds_to_next_minute()),
            )
        matched = None
        candidate = key.encode()
        for admin_key in self._keys:  # every key compared, so timing says nothing about which
            if hmac.compare_digest(candidate, admin_key):
                matched = admin_key
        if matched is None:
            try:
                await self._store.window_incr(counter, Window.MINUTE)
            except StateUnavailable:
                logger.warning("failed admin login not counted: shared state unavailable")
            await self._failures.failed(
                self._audit_log, source=source, key=key, route=route, method="POST", request_id=request_id
            )
            raise APIError(401, "not a valid admin key", code="invalid_admin_key")
        identity = admin_identity(matched)
        await self._audit_success(identity, source, route, request_id)
        return identity

    async def _failures_so_far(self, counter: str) -> int:
        try:
            return await self._store.window_get(counter, Window.MINUTE)
        except StateUnavailable:
            return 0  # the worker's own fallback counts meanwhile (fail-open stores); else unlimited

    async def _audit_success(
        self, identity: Identity, source: str, route: str, request_id: str | None
    ) -> None:
        record = AuditRecord(
            actor=identity.actor,
            action=LOGIN_ACTION,
            outcome="success",
            at=time.time(),
            target=route,
            request_id=request_id,
            details={"source_ip": source},
        )
        try:
            await self._audit_log.write(record)
        except Exception as error:  # a login is not refused for want of its record
            logger.warning("admin login not audited: %s", type(error).__name__)


def _seconds_to_next_minute() -> float:
    now = time.time()
    return max(math.ceil(now / 60) * 60 - now, 1.0)
