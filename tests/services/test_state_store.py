"""One suite for every ``StateStore`` backend: the numbers must not depend on which one serves them.

The Redis half talks to the real server on 127.0.0.1:6379 (``scripts/services.sh`` starts it) under
a fresh key prefix per test; it fails, never skips, when Redis is down. ``peer`` is a second handle
on the same state: another ``RedisStateStore`` with its own connection pool (as another worker
would have), or the very same ``MemoryStateStore`` (its state is per process by design).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio

from routeiq.state.base import Reservation, StateStore, Window, WindowAdjustment
from routeiq.state.memory import MemoryStateStore
from routeiq.state.redis import RedisStateStore
from tests.support.eventually import eventually
from tests.support.redis_store import REDIS_URL, open_redis_store, purge, state_store

DELIVERY_TIMEOUT = 5.0  # generous: the machine is slow and noisy
# TTLs here are real time: Redis expires keys by its own clock, which a test cannot move.
EXPIRY_TIMEOUT = 5.0

# 30 s before midnight UTC on the last day of a month: one step of 30 s crosses every window.
EVE = datetime(2031, 1, 31, 23, 59, 30, tzinfo=UTC).timestamp()
EVERY_WINDOW = list(Window)


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    async with state_store(request.param, "test") as opened:
        yield opened


@pytest.fixture
async def peer(store: StateStore) -> AsyncIterator[StateStore]:
    if not isinstance(store, RedisStateStore):
        yield store
        return
    other = await open_redis_store(store.key_prefix)
    yield other
    await other.close()


async def settle(store: StateStore) -> None:
    """Wait until the store's subscriptions are live (a notice sent before that is lost)."""
    assert isinstance(store, MemoryStateStore | RedisStateStore)
    assert await store.wait_subscribed(DELIVERY_TIMEOUT), "subscriptions never became live"


# --- counters ------------------------------------------------------------------------------------


async def test_incr_counts_from_zero(store: StateStore) -> None:
    assert await store.get_int("hits") == 0
    assert await store.incr("hits") == 1
    assert await store.incr("hits", 5) == 6
    assert await store.incr("hits", -2) == 4
    assert await store.get_int("hits") == 4


async def test_incr_ttl_expires(store: StateStore) -> None:
    assert await store.incr("short", 3, ttl_seconds=0.2) == 3
    assert await store.incr("long", 3, ttl_seconds=60) == 3

    async def short_expired() -> None:
        assert await store.get_int("short") == 0

    await eventually(short_expired, timeout=EXPIRY_TIMEOUT)
    assert await store.get_int("long") == 3
    assert await store.incr("short", ttl_seconds=0.2) == 1  # a fresh counter


async def test_hincr_updates_several_fields_at_once(store: StateStore) -> None:
    assert await store.hincr("stats", {"total": 1, "errors": 2}) == {"total": 1, "errors": 2}
    assert await store.hincr("stats", {"total": 4}) == {"total": 5}
    assert await store.hgetall("stats") == {"total": 5, "errors": 2}
    assert await store.hgetall("missing") == {}


async def test_hincr_once_adds_each_batch_of_a_writer_once(store: StateStore, peer: StateStore) -> None:
    assert await store.hincr_once("spend", {"usd": 5, "calls": 1}, "writer-a", 1)
    assert not await peer.hincr_once("spend", {"usd": 5, "calls": 1}, "writer-a", 1)  # a resend
    assert await store.hincr_once("spend", {"usd": 2}, "writer-a", 2)
    assert not await store.hincr_once("spend", {"usd": 9}, "writer-a", 1)  # older than the last added
    assert await store.hincr_once("spend", {"usd": 1}, "writer-b", 1)  # another writer numbers its own
    assert await store.hincr_once("other", {"usd": 3}, "writer-a", 1)  # and each hash on its own
    assert await peer.hgetall("spend") == {"usd": 8, "calls": 1}
    assert await peer.hgetall("other") == {"usd": 3}


async def test_a_window_handed_back_more_than_it_holds_stops_at_zero(store: StateStore) -> None:
    # Only a counter that lost its counts (a Redis restart) can be handed back more than it holds:
    # its window starts again from nothing, not from a credit that would let extra calls through.
    now = time.time()
    await store.window_incr("quota", Window.MINUTE, 2, now=now)
    await store.window_adjust(
        [WindowAdjustment("quota", Window.MINUTE, -5, now), WindowAdjustment("other", Window.HOUR, 3, now)]
    )
    assert await store.window_get("quota", Window.MINUTE, now=now) == 0
    assert await store.window_get("other", Window.HOUR, now=now) == 3
    await store.window_adjust([WindowAdjustment("quota", Window.MINUTE, -1, now)])
    assert await store.window_incr("quota", Window.MINUTE, 1, now=now) == 1


async def test_hincr_ttl_expires(store: StateStore) -> None:
    await store.hincr("minute", {"a": 1}, ttl_seconds=0.2)
    await store.hincr("hour", {"a": 1}, ttl_seconds=60)

    async def minute_expired() -> None:
        assert await store.hgetall("minute") == {}

    await eventually(minute_expired, timeout=EXPIRY_TIMEOUT)
    assert await store.hgetall("hour") == {"a": 1}


# --- windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", EVERY_WINDOW)
async def test_window_counts_within_its_bucket_then_rolls_over(store: StateStore, window: Window) -> None:
    assert await store.window_incr("tokens", window, 2, now=EVE - 25) == 2
    assert await store.window_incr("tokens", window, 3, now=EVE) == 5
    assert await store.window_get("tokens", window, now=EVE + 29.9) == 5
    # Midnight, Feb 1st: every window starts a new bucket.
    assert await store.window_get("tokens", window, now=EVE + 30) == 0
    assert await store.window_incr("tokens", window, 7, now=EVE + 30) == 7
    assert await store.window_get("tokens", window, now=EVE) == 5  # the old bucket is its own


@pytest.mark.parametrize(
    ("window", "start", "inside", "next_start"),
    [
        (Window.MINUTE, ts(2031, 5, 6, 7, 8), ts(2031, 5, 6, 7, 8, 59), ts(2031, 5, 6, 7, 9)),
        (Window.HOUR, ts(2031, 5, 6, 7), ts(2031, 5, 6, 7, 59, 59), ts(2031, 5, 6, 8)),
        (Window.DAY, ts(2031, 5, 6), ts(2031, 5, 6, 23, 59, 59), ts(2031, 5, 7)),
        (Window.MONTH, ts(2031, 2, 1), ts(2031, 2, 28, 23, 59, 59), ts(2031, 3, 1)),
        (Window.MONTH, ts(2032, 2, 1), ts(2032, 2, 29, 12), ts(2032, 3, 1)),  # leap year
        (Window.MONTH, ts(2031, 12, 1), ts(2031, 12, 31, 23, 59, 59), ts(2032, 1, 1)),  # new year
    ],
)
async def test_windows_are_utc_aligned(
    store: StateStore, window: Window, start: float, inside: float, next_start: float
) -> None:
    await store.window_incr("aligned", window, 1, now=start)
    await store.window_incr("aligned", window, 1, now=inside)
    assert await store.window_get("aligned", window, now=start) == 2
    assert await store.window_get("aligned", window, now=start - 0.001) == 0
    assert await store.window_get("aligned", window, now=next_start) == 0


# --- reservations --------------------------------------------------------------------------------


async def test_reserve_is_all_or_nothing(store: StateStore) -> None:
    minute = Reservation("user:1", Window.MINUTE, 4, limit=10)
    month = Reservation("team:1", Window.MONTH, 3, limit=5)

    first = await store.reserve([minute, month], now=EVE)
    assert first.ok and first.refused_index is None
    assert first.counts == (4, 3)
    assert first.reset_seconds == pytest.approx((30.0, 30.0))

    refused = await store.reserve([minute, month], now=EVE)  # month would reach 6 > 5
    assert not refused.ok
    assert refused.refused_index == 1
    assert refused.counts == (4, 3)  # unchanged
    assert refused.reset_seconds == pytest.approx((30.0, 30.0))
    assert await store.window_get("user:1", Window.MINUTE, now=EVE) == 4  # the first one did not grow

    over_first = await store.reserve([Reservation("user:1", Window.MINUTE, 7, 10), month], now=EVE)
    assert (over_first.ok, over_first.refused_index, over_first.counts) == (False, 0, (4, 3))

    exact = await store.reserve([Reservation("user:1", Window.MINUTE, 6, 10)], now=EVE)
    assert exact.ok and exact.counts == (10,)  # reaching the limit exactly is allowed


async def test_reserve_reports_seconds_until_each_window_resets(store: StateStore) -> None:
    now = ts(2031, 4, 10, 12, 30, 15)
    result = await store.reserve([Reservation("k", window, 1, 100) for window in EVERY_WINDOW], now=now)
    assert result.ok
    assert result.reset_seconds == pytest.approx(
        (45.0, 29 * 60 + 45.0, 11.5 * 3600 - 15.0, ts(2031, 5, 1) - now)
    )


async def test_reserve_checks_the_same_counter_cumulatively(store: StateStore) -> None:
    twice = [Reservation("k", Window.DAY, 3, 5), Reservation("k", Window.DAY, 3, 5)]
    result = await store.reserve(twice, now=EVE)
    assert (result.ok, result.refused_index) == (False, 1)
    assert await store.window_get("k", Window.DAY, now=EVE) == 0


async def test_reserve_in_a_new_bucket_starts_from_zero(store: StateStore) -> None:
    full = Reservation("k", Window.MINUTE, 10, 10)
    assert (await store.reserve([full], now=EVE)).ok
    assert not (await store.reserve([full], now=EVE + 29)).ok
    assert (await store.reserve([full], now=EVE + 30)).ok


async def test_concurrent_reserves_never_overshoot(store: StateStore, peer: StateStore) -> None:
    """50 racing requests for a limit of 10, half through another connection pool (for Redis: as
    from another process): exactly 10 win."""
    one = [Reservation("race", Window.MINUTE, 1, limit=10), Reservation("race-day", Window.DAY, 1, 1000)]
    calls = [(store if index % 2 else peer).reserve(one, now=EVE) for index in range(50)]
    results = await asyncio.gather(*calls)
    assert sum(result.ok for result in results) == 10
    assert sorted(result.counts[0] for result in results if result.ok) == list(range(1, 11))
    assert all(result.refused_index == 0 for result in results if not result.ok)
    assert await store.window_get("race", Window.MINUTE, now=EVE) == 10
    assert await peer.window_get("race-day", Window.DAY, now=EVE) == 10


# --- records -------------------------------------------------------------------------------------


async def test_records_round_trip_as_json(store: StateStore) -> None:
    record: dict[str, Any] = {"name": "cost", "weights": [1, 2.5], "nested": {"on": True, "none": None}}
    await store.set_record("strategy", record)
    assert await store.get_record("strategy") == record
    assert await store.get_record("missing") is None
    fetched = await store.get_record("strategy")
    assert fetched is not None
    fetched["name"] = "changed"  # a copy: the stored record does not change
    assert await store.get_record("strategy") == record


async def test_record_ttl_expires(store: StateStore) -> None:
    await store.set_record("short", {"a": 1}, ttl_seconds=0.2)
    await store.set_record("kept", {"a": 2}, ttl_seconds=60)

    async def short_expired() -> None:
        assert await store.get_record("short") is None

    await eventually(short_expired, timeout=EXPIRY_TIMEOUT)
    assert await store.get_record("kept") == {"a": 2}


async def test_set_record_if_absent_is_nx(store: StateStore, peer: StateStore) -> None:
    assert await store.set_record_if_absent("probe", {"by": "a"}, ttl_seconds=0.3)
    assert not await peer.set_record_if_absent("probe", {"by": "b"}, ttl_seconds=0.3)
    assert await peer.get_record("probe") == {"by": "a"}

    async def taken_over() -> bool:  # once the first holder's TTL has run out
        return await peer.set_record_if_absent("probe", {"by": "b"})

    await eventually(taken_over, timeout=EXPIRY_TIMEOUT)
    assert await store.get_record("probe") == {"by": "b"}


async def test_set_record_if_absent_has_one_winner(store: StateStore, peer: StateStore) -> None:
    attempts = [
        (store if index % 2 else peer).set_record_if_absent("lock", {"i": index}) for index in range(20)
    ]
    assert sum(await asyncio.gather(*attempts)) == 1


async def test_delete_removes_any_kind_of_key(store: StateStore) -> None:
    await store.incr("counter", 3)
    await store.hincr("hash", {"a": 1})
    await store.set_record("record", {"a": 1})
    for key in ("counter", "hash", "record", "never-existed"):
        await store.delete(key)
    assert await store.get_int("counter") == 0
    assert await store.hgetall("hash") == {}
    assert await store.get_record("record") is None


# --- notices -------------------------------------------------------------------------------------


async def test_publish_reaches_subscribers_on_other_instances(store: StateStore, peer: StateStore) -> None:
    received: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def async_handler(message: dict[str, Any]) -> None:
        await received.put(("async", message))

    def sync_handler(message: dict[str, Any]) -> None:
        received.put_nowait(("sync", message))

    def other_channel(message: dict[str, Any]) -> None:
        received.put_nowait(("other", message))

    peer.subscribe("breakers", async_handler)
    peer.subscribe("breakers", sync_handler)
    peer.subscribe("routing", other_channel)
    await settle(peer)

    await store.publish("breakers", {"id": "gpt", "opened_at": 12.5})
    got = [await asyncio.wait_for(received.get(), DELIVERY_TIMEOUT) for _ in range(2)]
    assert got == [("async", {"id": "gpt", "opened_at": 12.5}), ("sync", {"id": "gpt", "opened_at": 12.5})]
    # Nothing on "routing": a notice sent there now arrives after anything the first one put there.
    await store.publish("routing", {"name": "marker"})
    assert await asyncio.wait_for(received.get(), DELIVERY_TIMEOUT) == ("other", {"name": "marker"})
    assert received.empty()


async def test_publisher_hears_its_own_notices(store: StateStore) -> None:
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    store.subscribe("routing", received.put_nowait)
    await settle(store)
    await store.publish("routing", {"name": "cost"})
    assert await asyncio.wait_for(received.get(), DELIVERY_TIMEOUT) == {"name": "cost"}


async def test_a_failing_handler_does_not_stop_delivery(store: StateStore, peer: StateStore) -> None:
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def broken(message: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    async def broken_async(message: dict[str, Any]) -> None:
        raise RuntimeError("async handler bug")

    peer.subscribe("events", broken)
    peer.subscribe("events", broken_async)
    peer.subscribe("events", received.put_nowait)
    await settle(peer)
    for index in range(3):
        await store.publish("events", {"n": index})
    got = [await asyncio.wait_for(received.get(), DELIVERY_TIMEOUT) for _ in range(3)]
    assert got == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_subscribing_after_start_works(store: StateStore, peer: StateStore) -> None:
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    peer.subscribe("first", lambda message: None)
    await settle(peer)
    peer.subscribe("late", received.put_nowait)
    await settle(peer)
    await store.publish("late", {"ok": True})
    assert await asyncio.wait_for(received.get(), DELIVERY_TIMEOUT) == {"ok": True}


# --- Redis layout --------------------------------------------------------------------------------


async def test_redis_keys_live_under_the_prefix_with_window_ttls() -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    store = await open_redis_store(prefix)
    raw = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        now = time.time()
        await store.incr("plain", ttl_seconds=30)
        await store.window_incr("quota", Window.MINUTE, 2, now=now)
        await store.reserve([Reservation("quota", Window.DAY, 1, 5)], now=now)
        minute_key = f"{prefix}quota:minute:{int(now // 60)}"
        day_key = f"{prefix}quota:day:{int(now // 86400)}"
        assert await raw.get(minute_key) == b"2"
        assert await raw.get(day_key) == b"1"
        assert 0 < await raw.pttl(f"{prefix}plain") <= 30_000
        # A bucket lives a little longer than what is left of its window, never much longer.
        assert 60_000 <= await raw.pttl(minute_key) <= 121_000
        assert await raw.pttl(day_key) <= 86_400_000 + 61_000
    finally:
        await raw.aclose()
        await store.close()
        await purge(prefix)
