"""TTLs of the in-process store run on its injectable clock: tests move time instead of waiting."""

from __future__ import annotations

from routeiq.state.memory import MemoryStateStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_records_counters_and_hashes_live_exactly_their_ttl() -> None:
    clock = Clock()
    store = MemoryStateStore(clock=clock)
    await store.set_record("probe", {"at": 1}, ttl_seconds=5)
    await store.incr("consecutive", 3, ttl_seconds=5)
    await store.hincr("minute", {"total": 2}, ttl_seconds=5)
    assert not await store.set_record_if_absent("probe", {"at": 2}, ttl_seconds=5)

    clock.now += 4.999
    assert await store.get_record("probe") == {"at": 1}
    assert await store.get_int("consecutive") == 3
    assert await store.hgetall("minute") == {"total": 2}

    clock.now += 0.002
    assert await store.get_record("probe") is None
    assert await store.get_int("consecutive") == 0
    assert await store.hgetall("minute") == {}
    assert await store.set_record_if_absent("probe", {"at": 2}, ttl_seconds=5)


async def test_a_new_ttl_replaces_the_old_one_and_none_keeps_it_forever() -> None:
    clock = Clock()
    store = MemoryStateStore(clock=clock)
    await store.incr("n", 1, ttl_seconds=1)
    clock.now += 0.9
    await store.incr("n", 1, ttl_seconds=10)  # renewed, as PEXPIRE does in Redis
    clock.now += 5
    assert await store.get_int("n") == 2
    await store.set_record("forever", {"x": 1})
    clock.now += 10**9
    assert await store.get_record("forever") == {"x": 1}
