"""The ``StateStore`` interface: counters, windows, atomic reservations, records and notices.

Two implementations: ``MemoryStateStore`` (one process, the embedded default) and
``RedisStateStore`` (every worker and replica sharing one Redis). ``ResilientStateStore`` wraps the
Redis one so that losing Redis degrades a feature (fail-open: per-process state, counted and
reported) or refuses it (fail-closed), as that feature is configured, instead of failing requests.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class StateUnavailable(Exception):
    """The shared store cannot be reached (or answered too slowly)."""


class Window(enum.Enum):
    """Fixed windows, aligned to UTC boundaries; MONTH is the calendar month."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"

    # Members are singletons compared by identity, so identity can hash them too: Enum's own
    # __hash__ is a Python-level call, and windows are part of the keys of the quota hot path.
    __hash__ = object.__hash__


# A lease (units granted beyond a call's own amount, for later calls of the same process) is only
# granted while at least this many calls of that size still fit, and takes at most this share of
# the room left: near a limit every call goes to the shared counter, so N allowed means exactly N.
LEASE_MIN_CALLS_LEFT = 64
LEASE_SHARE = 8


@dataclass(frozen=True, slots=True)
class Reservation:
    """Add ``amount`` to the windowed counter ``key`` only if it stays within ``limit``.

    ``release``: units the caller reserved earlier and no longer needs, handed back first in the same
    atomic step. ``lease``: extra units the caller would like for its later calls, granted as far as
    ``lease_granted`` allows. One reservation per counter and window in a call.
    """

    key: str
    window: Window
    amount: int
    limit: int
    release: int = 0
    lease: int = 0


@dataclass(frozen=True, slots=True)
class ReservationResult:
    ok: bool
    counts: tuple[int, ...]  # each counter after the call (unchanged ones when refused)
    reset_seconds: tuple[float, ...]  # seconds until each counter's window rolls over
    refused_index: int | None = None  # the first reservation that would have gone over its limit
    granted: tuple[int, ...] = ()  # when ok: units added for each, its amount plus any lease


@dataclass(frozen=True, slots=True)
class WindowAdjustment:
    """Add ``amount`` (negative: give back) to ``key``'s ``window`` bucket that contains ``at``."""

    key: str
    window: Window
    amount: int
    at: float


def lease_granted(reservation: Reservation, count_after: int) -> int:
    """The extra units a granted reservation also takes, given its counter after its own amount."""
    room = reservation.limit - count_after
    if reservation.lease <= 0 or room < LEASE_MIN_CALLS_LEFT * max(reservation.amount, 1):
        return 0
    return min(reservation.lease, room // LEASE_SHARE)


Handler = Callable[[dict[str, Any]], Awaitable[None] | None]


class StateStore(Protocol):
    backend: str  # "memory" or "redis"

    async def start(self) -> None:
        """Connect and start listening for notices (idempotent)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``StateUnavailable`` if the store cannot be reached."""

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int: ...

    async def get_int(self, key: str) -> int: ...

    async def hincr(
        self, key: str, amounts: Mapping[str, int], ttl_seconds: float | None = None
    ) -> dict[str, int]:
        """Add to several fields of a hash counter at once; returns the new values of those fields."""

    async def hincr_once(self, key: str, amounts: Mapping[str, int], writer: str, batch: int) -> bool:
        """``hincr`` that a resend cannot repeat: adds ``amounts`` unless ``writer`` has already added
        batch number ``batch`` (or a later one) to ``key``. A writer numbers its batches upwards and
        resends one whose answer was lost; returns whether this call added it."""

    async def hgetall(self, key: str) -> dict[str, int]: ...

    async def window_incr(
        self, key: str, window: Window, amount: int = 1, now: float | None = None
    ) -> int: ...

    async def window_get(self, key: str, window: Window, now: float | None = None) -> int: ...

    async def reserve(
        self, reservations: Sequence[Reservation], now: float | None = None
    ) -> ReservationResult:
        """All-or-nothing: either every counter grows by its amount (less its release, plus any
        lease), or none changes."""

    async def window_adjust(self, adjustments: Sequence[WindowAdjustment]) -> None:
        """Apply several window corrections in one round trip (not atomic as a whole). A counter
        never goes below zero: one that would has lost counts (a Redis restart or failover), and its
        window starts again from nothing rather than from a credit."""

    async def set_record(
        self, key: str, value: Mapping[str, Any], ttl_seconds: float | None = None
    ) -> None: ...

    async def set_record_if_absent(
        self, key: str, value: Mapping[str, Any], ttl_seconds: float | None = None
    ) -> bool: ...

    async def get_record(self, key: str) -> dict[str, Any] | None: ...

    async def delete(self, key: str) -> None: ...

    async def put_version(self, key: str, field: str, value: Mapping[str, Any], floor: int = 0) -> int:
        """Store ``value`` as the next version of ``field`` in the versioned map ``key``, atomically,
        and return that version: one more than the larger of the stored version and ``floor``."""

    async def restore_version(self, key: str, field: str, version: int, value: Mapping[str, Any]) -> bool:
        """Store ``value`` as ``version`` of ``field`` unless the stored version is already that or
        newer (atomic); whether it was stored. Puts back what a store that lost its data forgot."""

    async def versions(self, key: str) -> dict[str, int]:
        """The current version of every field of the versioned map ``key``."""

    async def get_version(self, key: str, field: str) -> tuple[int, dict[str, Any]] | None:
        """A field's version and value, read together; None if the field was never stored."""

    async def put_entry(self, key: str, field: str, value: Mapping[str, Any]) -> None:
        """Set one entry of the record map ``key`` (a hash of JSON records)."""

    async def entries(self, key: str) -> dict[str, dict[str, Any]]: ...

    async def delete_entries(self, key: str, fields: Sequence[str]) -> None: ...

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None: ...

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler`` for every message published on ``channel`` by any process (this one too)."""
