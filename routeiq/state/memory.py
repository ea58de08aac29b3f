"""``MemoryStateStore``: the embedded, single-process ``StateStore``.

Every operation runs without an ``await`` between reading and writing, so under asyncio each one is
atomic by construction (``reserve`` included) without locks. Values go through JSON on the way in
and out, exactly as they do in Redis, so code that works on this store works on the shared one
(no aliasing of stored dicts, no values Redis could not carry).

This module also holds the pieces both backends share: the UTC window arithmetic and the delivery
of a notice to its handlers.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson

from routeiq.state.base import (
    Handler,
    Reservation,
    ReservationResult,
    Window,
    WindowAdjustment,
    lease_granted,
)

logger = logging.getLogger("routeiq.state")

T = TypeVar("T")
ReconnectHook = Callable[[], Awaitable[None] | None]

_FIXED_WINDOW_SECONDS = {Window.MINUTE: 60, Window.HOUR: 3600, Window.DAY: 86400}
WINDOW_GRACE_SECONDS = 60.0  # a bucket outlives its window a little: clocks of workers differ slightly
_SWEEP_INTERVAL_SECONDS = 30.0  # how often expired entries are purged (they are invisible before that)


# --- shared by both backends ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bucket:
    """The fixed window that contains a moment: its id (part of the key) and when it ends."""

    id: int
    ends_at: float

    def reset_seconds(self, now: float) -> float:
        return max(self.ends_at - now, 0.0)


def bucket_of(window: Window, now: float) -> Bucket:
    """MINUTE/HOUR/DAY: ``floor(now / length)``; MONTH: the UTC calendar month as ``YYYYMM``."""
    if window is Window.MONTH:
        moment = datetime.fromtimestamp(now, UTC)
        next_month = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
        return Bucket(moment.year * 100 + moment.month, next_month.timestamp())
    length = _FIXED_WINDOW_SECONDS[window]
    index = math.floor(now / length)
    return Bucket(index, float((index + 1) * length))


def plan_reservations(
    reservations: Sequence[Reservation], current: Callable[[int], int]
) -> tuple[int | None, list[int]]:
    """Decide a reservation against current counts: (first refused index or None, count after each).

    ``current(i)`` is the stored count of reservation ``i``'s counter. Reservations naming the same
    counter are checked cumulatively, as applying them one after the other would.
    """
    projected: dict[tuple[str, Window], int] = {}
    after: list[int] = []
    for index, item in enumerate(reservations):
        counter = (item.key, item.window)
        value = projected.get(counter, current(index) - item.release) + item.amount
        if value > item.limit:
            return index, []
        projected[counter] = value
        after.append(value)
    return None, after


def encode(value: Mapping[str, Any]) -> bytes:
    return orjson.dumps(dict(value))


def decode_record(raw: bytes | str) -> dict[str, Any] | None:
    value = orjson.loads(raw)
    return value if isinstance(value, dict) else None


async def deliver(handlers: Iterable[Handler], payload: bytes, channel: str) -> None:
    """Hand a notice to every handler, in order; one failing handler never stops the others.

    Each handler gets its own decoded copy, so none can see another's mutations. Async handlers are
    awaited in turn: notices on a channel are then handled in the order they were published.
    """
    try:
        valid = decode_record(payload) is not None
    except orjson.JSONDecodeError:
        valid = False
    if not valid:
        logger.warning("ignoring a notice on %r that is not a JSON object", channel)
        return
    for handler in list(handlers):
        try:
            result = handler(orjson.loads(payload))
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("handler for notices on %r failed", channel)


async def run_hooks(hooks: Iterable[ReconnectHook], what: str) -> None:
    """Call every hook (sync or async), logging rather than propagating a failure."""
    for hook in list(hooks):
        try:
            result = hook()
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("%s hook failed", what)


# --- the in-memory store ----------------------------------------------------------------------


@dataclass(slots=True)
class _Expiring(Generic[T]):
    value: T
    deadline: float | None  # the store's clock reading after which the entry is gone; None: never


@dataclass(slots=True)
class _WindowCount:
    count: int
    ends_at: float  # in the caller's clock (``now``), which tests move freely


class MemoryStateStore:
    """State for one process. ``delete`` removes a key whatever it holds, as in Redis."""

    backend = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` times TTLs (tests move it instead of waiting); windows use the caller's ``now``."""
        self._clock = clock
        self._counters: dict[str, _Expiring[int]] = {}
        self._hashes: dict[str, _Expiring[dict[str, int]]] = {}
        self._batches: dict[tuple[str, str], int] = {}  # (writer, key) -> the last batch hincr_once added
        self._records: dict[str, _Expiring[bytes]] = {}
        self._versioned: dict[str, dict[str, tuple[int, bytes]]] = {}
        self._entries: dict[str, dict[str, bytes]] = {}
        self._windows: dict[tuple[str, Window, int], _WindowCount] = {}
        self._handlers: dict[str, list[Handler]] = {}
        self._reconnect_hooks: list[ReconnectHook] = []
        self._next_sweep = self._next_window_sweep = clock() + _SWEEP_INTERVAL_SECONDS

    # --- lifecycle ---

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release; the data simply goes with the process."""

    async def ping(self) -> None:
        """Always reachable."""

    async def wait_subscribed(self, wait_seconds: float | None = None) -> bool:
        """Subscriptions are live as soon as ``subscribe`` returns (parity with the Redis store)."""
        return True

    def add_reconnect_hook(self, hook: ReconnectHook) -> None:
        """Accepted for parity with the Redis store; never called: nothing here can be missed."""
        self._reconnect_hooks.append(hook)

    def clear(self) -> None:
        """Forget all data (subscriptions stay): used when a fallback's outage state goes stale."""
        self._counters.clear()
        self._hashes.clear()
        self._batches.clear()
        self._records.clear()
        self._versioned.clear()
        self._entries.clear()
        self._windows.clear()

    # --- counters ---

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        self._sweep_if_due()
        entry = self._live(self._counters, key)
        if entry is None:
            entry = self._counters[key] = _Expiring(0, None)
        entry.value += amount
        self._set_ttl(entry, ttl_seconds)
        return entry.value

    async def get_int(self, key: str) -> int:
        entry = self._live(self._counters, key)
        return entry.value if entry else 0

    async def hincr(
        self, key: str, amounts: Mapping[str, int], ttl_seconds: float | None = None
    ) -> dict[str, int]:
        self._sweep_if_due()
        entry = self._live(self._hashes, key)
        if entry is None:
            entry = self._hashes[key] = _Expiring({}, None)
        for field, amount in amounts.items():
            entry.value[field] = entry.value.get(field, 0) + amount
        self._set_ttl(entry, ttl_seconds)
        return {field: entry.value[field] for field in amounts}

    async def hincr_once(self, key: str, amounts: Mapping[str, int], writer: str, batch: int) -> bool:
        if self._batches.get((writer, key), 0) >= batch:
            return False
        await self.hincr(key, amounts)
        self._batches[writer, key] = batch
        return True

    async def hgetall(self, key: str) -> dict[str, int]:
        entry = self._live(self._hashes, key)
        return dict(entry.value) if entry else {}

    # --- windows ---

    async def window_incr(self, key: str, window: Window, amount: int = 1, now: float | None = None) -> int:
        now = time.time() if now is None else now
        self._sweep_windows(now)
        bucket = bucket_of(window, now)
        slot = self._windows.setdefault((key, window, bucket.id), _WindowCount(0, bucket.ends_at))
        slot.count += amount
        return slot.count

    async def window_get(self, key: str, window: Window, now: float | None = None) -> int:
        now = time.time() if now is None else now
        slot = self._windows.get((key, window, bucket_of(window, now).id))
        return slot.count if slot else 0

    async def reserve(
        self, reservations: Sequence[Reservation], now: float | None = None
    ) -> ReservationResult:
        now = time.time() if now is None else now
        self._sweep_windows(now)
        buckets = [bucket_of(item.window, now) for item in reservations]
        slots = [
            (item.key, item.window, bucket.id) for item, bucket in zip(reservations, buckets, strict=True)
        ]
        resets = tuple(bucket.reset_seconds(now) for bucket in buckets)
        refused, after = plan_reservations(reservations, lambda index: self._window_count(slots[index]))
        if refused is not None:
            counts = tuple(
                self._window_count(slot) - item.release
                for slot, item in zip(slots, reservations, strict=True)
            )
            return ReservationResult(False, counts, resets, refused)
        granted = []
        for index, (item, slot, bucket) in enumerate(zip(reservations, slots, buckets, strict=True)):
            extra = lease_granted(item, after[index])
            after[index] += extra
            granted.append(item.amount + extra)
            self._windows[slot] = _WindowCount(after[index], bucket.ends_at)
        return ReservationResult(True, tuple(after), resets, granted=tuple(granted))

    async def window_adjust(self, adjustments: Sequence[WindowAdjustment]) -> None:
        for item in adjustments:
            count = await self.window_incr(item.key, item.window, item.amount, now=item.at)
            if count < 0:  # counts lost (the fallback was cleared): start again from nothing
                await self.window_incr(item.key, item.window, -count, now=item.at)

    # --- records ---

    async def set_record(self, key: str, value: Mapping[str, Any], ttl_seconds: float | None = None) -> None:
        self._sweep_if_due()
        self._records[key] = _Expiring(encode(value), self._deadline(ttl_seconds))

    async def set_record_if_absent(
        self, key: str, value: Mapping[str, Any], ttl_seconds: float | None = None
    ) -> bool:
        if self._live(self._records, key) is not None:
            return False
        await self.set_record(key, value, ttl_seconds)
        return True

    async def get_record(self, key: str) -> dict[str, Any] | None:
        entry = self._live(self._records, key)
        return decode_record(entry.value) if entry else None

    async def delete(self, key: str) -> None:
        self._counters.pop(key, None)
        self._hashes.pop(key, None)
        self._records.pop(key, None)
        self._versioned.pop(key, None)
        self._entries.pop(key, None)

    # --- versioned maps and record maps ---

    async def put_version(self, key: str, field: str, value: Mapping[str, Any], floor: int = 0) -> int:
        fields = self._versioned.setdefault(key, {})
        stored = fields.get(field)
        version = max(stored[0] if stored else 0, floor) + 1
        fields[field] = (version, encode(value))
        return version

    async def restore_version(self, key: str, field: str, version: int, value: Mapping[str, Any]) -> bool:
        fields = self._versioned.setdefault(key, {})
        stored = fields.get(field)
        if stored is not None and stored[0] >= version:
            return False
        fields[field] = (version, encode(value))
        return True

    async def versions(self, key: str) -> dict[str, int]:
        return {field: version for field, (version, _) in self._versioned.get(key, {}).items()}

    async def get_version(self, key: str, field: str) -> tuple[int, dict[str, Any]] | None:
        stored = self._versioned.get(key, {}).get(field)
        if stored is None:
            return None
        return stored[0], decode_record(stored[1]) or {}

    async def put_entry(self, key: str, field: str, value: Mapping[str, Any]) -> None:
        self._entries.setdefault(key, {})[field] = encode(value)

    async def entries(self, key: str) -> dict[str, dict[str, Any]]:
        return {field: decode_record(raw) or {} for field, raw in self._entries.get(key, {}).items()}

    async def delete_entries(self, key: str, fields: Sequence[str]) -> None:
        entries = self._entries.get(key, {})
        for field in fields:
            entries.pop(field, None)

    # --- notices ---

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        await deliver(self._handlers.get(channel, ()), encode(message), channel)

    def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers.setdefault(channel, []).append(handler)

    # --- internals ---

    def _window_count(self, slot: tuple[str, Window, int]) -> int:
        found = self._windows.get(slot)
        return found.count if found else 0

    def _deadline(self, ttl_seconds: float | None) -> float | None:
        return None if ttl_seconds is None else self._clock() + ttl_seconds

    def _set_ttl(self, entry: _Expiring[Any], ttl_seconds: float | None) -> None:
        """As INCRBY + EXPIRE: a TTL given now replaces the old one; none given keeps it."""
        if ttl_seconds is not None:
            entry.deadline = self._deadline(ttl_seconds)

    def _live(self, table: dict[str, _Expiring[T]], key: str) -> _Expiring[T] | None:
        """The entry if it exists and has not expired (expired ones are dropped on the way)."""
        entry = table.get(key)
        if entry is not None and entry.deadline is not None and entry.deadline <= self._clock():
            del table[key]
            return None
        return entry

    def _sweep_if_due(self) -> None:
        """Drop expired entries now and then, so keys never read again do not pile up."""
        moment = self._clock()
        if moment < self._next_sweep:
            return
        self._next_sweep = moment + _SWEEP_INTERVAL_SECONDS
        tables: tuple[dict[str, _Expiring[Any]], ...] = (self._counters, self._hashes, self._records)
        for table in tables:
            for key in [key for key, entry in table.items() if entry.deadline is not None]:
                self._live(table, key)

    def _sweep_windows(self, now: float) -> None:
        """Drop buckets whose window ended (plus grace) before ``now``, now and then.

        Judged by the caller's clock rather than the wall clock, so callers moving ``now`` (tests)
        see buckets live exactly as long as their own timeline says.
        """
        moment = self._clock()
        if moment < self._next_window_sweep:
            return
        self._next_window_sweep = moment + _SWEEP_INTERVAL_SECONDS
        stale = [slot for slot, found in self._windows.items() if found.ends_at + WINDOW_GRACE_SECONDS < now]
        for slot in stale:
            del self._windows[slot]
