"""SharedCounters: counts reach the store exactly once, whatever happens to a flush on the way."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from routeiq.state.base import StateUnavailable
from routeiq.state.counters import SharedCounters
from routeiq.state.memory import MemoryStateStore


class FlakyStore(MemoryStateStore):
    """A store whose next calls fail: before adding (Redis away) or after (the answer lost)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_before = 0
        self.fail_after = 0
        self.calls = 0

    async def hincr_once(self, key: str, amounts: Mapping[str, int], writer: str, batch: int) -> bool:
        self.calls += 1
        if self.fail_before:
            self.fail_before -= 1
            raise StateUnavailable("redis unreachable: ConnectionError")
        added = await super().hincr_once(key, amounts, writer, batch)
        if self.fail_after:
            self.fail_after -= 1
            raise StateUnavailable("redis unreachable: TimeoutError")
        return added


async def test_a_flush_whose_answer_was_lost_is_not_added_twice() -> None:
    store = FlakyStore()
    counters = SharedCounters(store, 60, "test flush")
    counters.add("spend:key:a", {"usd": 3, "requests": 1})
    counters.incr("stats", "auto|a|ok")
    store.fail_after = 1  # the first hash reaches the store, its answer does not come back

    with pytest.raises(StateUnavailable):
        await counters.flush()
    assert counters.failing and counters.waiting == 2
    assert counters.pending("spend:key:a") == {"usd": 3, "requests": 1}  # not known to be stored

    counters.add("spend:key:a", {"usd": 4, "requests": 1})  # a later request, same hash
    await counters.flush()
    assert not counters.failing and counters.waiting == 0
    assert await store.hgetall("spend:key:a") == {"usd": 7, "requests": 2}
    assert await store.hgetall("stats") == {"auto|a|ok": 1}


async def test_counts_wait_while_the_store_is_away_and_arrive_once() -> None:
    store = FlakyStore()
    counters = SharedCounters(store, 60, "test flush")
    for _ in range(3):
        counters.incr("stats", "auto|a|ok")
        store.fail_before = 1
        with pytest.raises(StateUnavailable):
            await counters.flush()
    assert counters.pending("stats") == {"auto|a|ok": 3}
    await counters.flush()
    assert await store.hgetall("stats") == {"auto|a|ok": 3}
    assert counters.pending("stats") == {}


async def test_flushes_at_once_keep_every_count() -> None:
    store = FlakyStore()
    counters = SharedCounters(store, 60, "test flush")

    async def count_and_flush(n: int) -> None:
        counters.incr("stats", "auto|a|ok", n)
        await counters.flush()

    await asyncio.gather(*(count_and_flush(n) for n in range(1, 21)))
    assert await store.hgetall("stats") == {"auto|a|ok": sum(range(1, 21))}
