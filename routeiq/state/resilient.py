"""Losing Redis degrades or refuses a feature, as configured, instead of failing its requests.

``ResilientStateStore`` wraps the shared store for one feature. Every call goes to the primary
(Redis); when that raises ``StateUnavailable`` the failure is recorded on the app's ``StateHealth``
and the call is either served from a per-process fallback (``fail_open``) or refused (fail closed:
``StateUnavailable`` again). State served by the fallback is local to this process until Redis
returns; then the primary is the truth again and the fallback's outage state is dropped.

A dead Redis costs one timeout, not one per request: after a failure ``StateHealth`` keeps every
wrapper away from the primary for ``retry_interval`` seconds, then lets a single call probe it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from routeiq.state.base import (
    Handler,
    Reservation,
    ReservationResult,
    StateStore,
    StateUnavailable,
    Window,
    WindowAdjustment,
)
from routeiq.state.memory import MemoryStateStore, ReconnectHook

logger = logging.getLogger("routeiq.state")

T = TypeVar("T")


class StateHealth:
    """How shared state is doing, for the whole app (one instance shared by every wrapper).

    ``degraded``/``reason`` feed the health endpoint and the ``routeiq_state_degraded`` gauge;
    ``fallbacks`` counts calls served from per-process state, per feature, and ``on_fallback`` (set
    by the metrics layer) hears about each one as it happens.
    """

    def __init__(self, retry_interval: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.degraded = False
        self.reason: str | None = None
        self.fallbacks: dict[str, int] = {}
        self.on_fallback: Callable[[str], None] | None = None
        self.retry_interval = retry_interval
        self._clock = clock
        self._retry_at = 0.0

    def record_failure(self, feature: str, reason: str) -> None:
        """The primary failed: degraded, and nobody tries it again for ``retry_interval``."""
        if not self.degraded:
            logger.warning("shared state unavailable (%s, seen by %s): degrading", reason, feature)
        self.degraded = True
        self.reason = reason
        self._retry_at = self._clock() + self.retry_interval

    def record_success(self) -> None:
        if self.degraded:
            logger.info("shared state is back (was: %s)", self.reason)
        self.degraded = False
        self.reason = None

    def record_fallback(self, feature: str) -> None:
        """A call was served from per-process state instead of the shared store."""
        self.fallbacks[feature] = self.fallbacks.get(feature, 0) + 1
        if self.on_fallback is not None:
            try:
                self.on_fallback(feature)
            except Exception:  # a metrics hiccup must never fail a request
                logger.exception("on_fallback listener failed")

    def may_try_primary(self) -> bool:
        """Healthy: always. Degraded: once per ``retry_interval`` (that caller is the probe)."""
        if not self.degraded:
            return True
        now = self._clock()
        if now < self._retry_at:
            return False
        self._retry_at = now + self.retry_interval  # the others keep away while this one probes
        return True


class ResilientStateStore:
    """The ``StateStore`` a feature uses: ``primary`` while it answers, else ``fallback`` or refusal."""

    def __init__(
        self,
        primary: StateStore,
        fallback: StateStore,
        *,
        feature: str,
        fail_open: bool,
        health: StateHealth,
    ) -> None:
        self.backend = primary.backend
        self.feature = feature
        self.fail_open = fail_open
        self._primary = primary
        self._fallback = fallback
        self._health = health
        self._fallback_dirty = False  # the fallback holds outage state to drop once Redis answers

    @property
    def health(self) -> StateHealth:
        return self._health

    # --- lifecycle ---

    async def start(self) -> None:
        await self._fallback.start()
        try:
            await self._primary.start()
        except StateUnavailable as exc:  # the app still boots; calls degrade as configured
            self._health.record_failure(self.feature, str(exc))

    async def close(self) -> None:
        await self._primary.close()
        await self._fallback.close()

    async def ping(self) -> None:
        """Probe the primary itself (the fallback is always there), updating health either way."""
        try:
            await self._primary.ping()
        except StateUnavailable as exc:
            self._health.record_failure(self.feature, str(exc))
            raise
        self._recovered()

    async def wait_subscribed(self, wait_seconds: float | None = None) -> bool:
        waiter = getattr(self._primary, "wait_subscribed", None)
        return bool(await waiter(wait_seconds)) if waiter is not None else True

    def add_reconnect_hook(self, hook: ReconnectHook) -> None:
        """Forwarded to the primary when it has reconnections to report (the Redis store does)."""
        register = getattr(self._primary, "add_reconnect_hook", None)
        if register is not None:
            register(hook)

    # --- the StateStore calls ---

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        return await self._call(lambda store: store.incr(key, amount, ttl_seconds))

    async def get_int(self, key: str) -> int:
        return await self._call(lambda store: store.get_int(key))

    async def hincr(
        self, key: str, amounts: Mapping[str, int], ttl_seconds: float | None = None
    ) -> dict[str, int]:
        return await self._call(lambda store: store.hincr(key, amounts, ttl_seconds))

    async def hincr_once(self, key: str, amounts: Mapping[str, int], writer: str, batch: int) -> bool:
        return await self._call(lambda store: store.hincr_once(key, amounts, writer, batch))

    async def hgetall(self, key: str) -> dict[str, int]:
        return await self._call(lambda store: store.hgetall(key))

    async def window_incr(self, key: str, window: Window, amount: int = 1, now: float | None = None) -> int:
        return await self._call(lambda store: store.window_incr(key, window, amount, now))

    async def window_get(self, key: str, window: Window, now: float | None = None) -> int:
        return await self._call(lambda store: store.window_get(key, window, now))

    async def reserve(
        self, reservations: Sequence[Reservation], now: float | None = None
    ) -> ReservationResult:
        return await self._call(lambda store: store.reserve(reservations, now))

    async def window_adjust(self, adjustments: Sequence[WindowAdjustment]) -> None:
        await self._call(lambda store: store.window_adjust(adjustments))

    async def set_record(self, key: str, value: Mapping[str, Any], ttl_seconds: float | None = None) -> None:
        await self._call(lambda store: store.set_record(key, value, ttl_seconds))

    async def set_record_if_absent(
        self, key: str, value: Mapping[str, Any], ttl_seconds: float | None = None
    ) -> bool:
        return await self._call(lambda store: store.set_record_if_absent(key, value, ttl_seconds))

    async def get_record(self, key: str) -> dict[str, Any] | None:
        return await self._call(lambda store: store.get_record(key))

    async def delete(self, key: str) -> None:
        await self._call(lambda store: store.delete(key))

    async def put_version(self, key: str, field: str, value: Mapping[str, Any], floor: int = 0) -> int:
        return await self._call(lambda store: store.put_version(key, field, value, floor))

    async def restore_version(self, key: str, field: str, version: int, value: Mapping[str, Any]) -> bool:
        return await self._call(lambda store: store.restore_version(key, field, version, value))

    async def versions(self, key: str) -> dict[str, int]:
        return await self._call(lambda store: store.versions(key))

    async def get_version(self, key: str, field: str) -> tuple[int, dict[str, Any]] | None:
        return await self._call(lambda store: store.get_version(key, field))

    async def put_entry(self, key: str, field: str, value: Mapping[str, Any]) -> None:
        await self._call(lambda store: store.put_entry(key, field, value))

    async def entries(self, key: str) -> dict[str, dict[str, Any]]:
        return await self._call(lambda store: store.entries(key))

    async def delete_entries(self, key: str, fields: Sequence[str]) -> None:
        await self._call(lambda store: store.delete_entries(key, fields))

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        """Through Redis normally; during an outage only this process's subscribers hear it."""
        await self._call(lambda store: store.publish(channel, message))

    def subscribe(self, channel: str, handler: Handler) -> None:
        """On both stores: Redis carries notices normally, the fallback those published in an outage."""
        self._primary.subscribe(channel, handler)
        self._fallback.subscribe(channel, handler)

    # --- internals ---

    async def _call(self, operation: Callable[[StateStore], Awaitable[T]]) -> T:
        if self._health.may_try_primary():
            try:
                result = await operation(self._primary)
            except StateUnavailable as exc:
                self._health.record_failure(self.feature, str(exc))
                if not self.fail_open:
                    raise
            else:
                self._recovered()
                return result
        elif not self.fail_open:
            raise StateUnavailable(f"{self._health.reason or 'redis unavailable'} (not retried yet)")
        return await self._from_fallback(operation)

    async def _from_fallback(self, operation: Callable[[StateStore], Awaitable[T]]) -> T:
        self._fallback_dirty = True
        self._health.record_fallback(self.feature)
        return await operation(self._fallback)

    def _recovered(self) -> None:
        """The primary answered: healthy again, and outage-time local state must not resurface in a
        later outage (a stale breaker record, say), so the fallback forgets it."""
        self._health.record_success()
        if self._fallback_dirty and isinstance(self._fallback, MemoryStateStore):
            self._fallback.clear()
        self._fallback_dirty = False
