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


@dataclass(frozen=True, slots=True)
class Reservation:
    """Add ``amount`` to the windowed counter ``key`` only if it stays within ``limit``."""

    key: str
    window: Window
    amount: int
    limit: int


@dataclass(frozen=True, slots=True)
class ReservationResult:
    ok: bool
    counts: tuple[int, ...]  # each counter after the call (unchanged ones when refused)
    reset_seconds: tuple[float, ...]  # seconds until each counter's window rolls over
    refused_index: int | None = None  # the first reservation that would have gone over its limit


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

    async def hgetall(self, key: str) -> dict[str, int]: ...

    async def window_incr(
        self, key: str, window: Window, amount: int = 1, now: float | None = None
    ) -> int: ...

    async def window_get(self, key: str, window: Window, now: float | None = None) -> int: ...

    async def reserve(
        self, reservations: Sequence[Reservation], now: float | None = None
    ) -> ReservationResult:
        """All-or-nothing: either every counter grows by its amount, or none does."""

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
