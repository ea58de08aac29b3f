"""The live-change mechanism on in-process state: two hubs on one store stand for two processes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from routeiq.state.base import StateUnavailable
from routeiq.state.changes import RECORDS, Change, ChangeRefused, LiveChanges
from routeiq.state.memory import MemoryStateStore


class Flaky:
    """The shared store, with a switch that makes every call fail as an unreachable Redis does."""

    backend = "memory"

    def __init__(self, store: MemoryStateStore) -> None:
        self.store = store
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StateUnavailable("redis unreachable: test")

    async def put_version(self, key: str, field: str, value: Mapping[str, Any], floor: int = 0) -> int:
        self._check()
        return await self.store.put_version(key, field, value, floor)

    async def versions(self, key: str) -> dict[str, int]:
        self._check()
        return await self.store.versions(key)

    async def get_version(self, key: str, field: str) -> tuple[int, dict[str, Any]] | None:
        self._check()
        return await self.store.get_version(key, field)

    async def put_entry(self, key: str, field: str, value: Mapping[str, Any]) -> None:
        self._check()
        await self.store.put_entry(key, field, value)

    async def entries(self, key: str) -> dict[str, dict[str, Any]]:
        self._check()
        return await self.store.entries(key)

    async def delete_entries(self, key: str, fields: Sequence[str]) -> None:
        self._check()
        await self.store.delete_entries(key, fields)

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        self._check()
        await self.store.publish(channel, message)

    def subscribe(self, channel: str, handler: Any) -> None:
        self.store.subscribe(channel, handler)


class Seen:
    """An applier that remembers every change it was handed."""

    def __init__(self) -> None:
        self.changes: list[Change] = []

    def __call__(self, change: Change) -> None:
        self.changes.append(change)

    @property
    def last(self) -> dict[str, Any] | None:
        return self.changes[-1].value if self.changes else None


def hub(store: Any, name: str) -> LiveChanges:
    return LiveChanges(store, name, resync_seconds=3600)  # resyncs only when a test calls it


async def test_a_change_reaches_every_process_and_each_reports_its_version() -> None:
    store = MemoryStateStore()
    here, there = hub(store, "a"), hub(store, "b")
    seen_here, seen_there = Seen(), Seen()
    here.watch("routing", seen_here)
    there.watch("routing", seen_there)
    await here.start()
    await there.start()

    assert await here.publish("routing", {"name": "cost"}) == 1
    assert await there.publish("routing", {"name": "latency"}) == 2

    assert seen_here.last == seen_there.last == {"name": "latency"}
    view = await here.cluster()
    assert view["subjects"] == {"routing": 2}
    assert {instance: report["applied"] for instance, report in view["instances"].items()} == {
        "a": {"routing": 2},
        "b": {"routing": 2},
    }
    await here.close()
    assert set((await there.cluster())["instances"]) == {"b"}  # a closed process leaves the list


async def test_a_dropped_notice_is_repaired_by_the_resync() -> None:
    store = MemoryStateStore()
    listener = hub(store, "b")
    seen = Seen()
    listener.watch("policy", seen)
    await listener.start()
    await store.put_version(RECORDS, "policy", {"digest": "abc"})  # stored, never announced

    assert seen.changes == []
    await listener.resync()
    assert seen.last == {"digest": "abc"}
    assert listener.applied() == {"policy": 1}


async def test_versions_stored_before_start_count_as_applied_without_catch_up() -> None:
    store = MemoryStateStore()
    await store.put_version(RECORDS, "keys", {"forget": "old"})
    late = hub(store, "late")
    seen = Seen()
    late.watch("keys", seen, catch_up=False)
    await late.start()
    assert seen.changes == [] and late.applied() == {"keys": 1}

    await store.put_version(RECORDS, "keys", {"forget": "new"})
    await late.resync()
    assert [change.value for change in seen.changes] == [{"forget": "new"}]
    assert seen.changes[0].follows_previous


async def test_skipped_versions_are_flagged_for_appliers_of_deltas() -> None:
    store = MemoryStateStore()
    listener = hub(store, "b")
    seen = Seen()
    listener.watch("keys", seen)
    await listener.start()
    for secret in ("one", "two", "three"):
        await store.put_version(RECORDS, "keys", {"forget": secret})
    await listener.resync()
    assert seen.changes[-1].version == 3 and not seen.changes[-1].follows_previous


async def test_a_change_this_process_cannot_use_is_reported_once_with_its_reason() -> None:
    store = MemoryStateStore()
    here, there = hub(store, "a"), hub(store, "b")
    attempts: list[int] = []

    def refuse(change: Change) -> None:
        attempts.append(change.version)
        raise ChangeRefused("artifact abc not found here")

    here.watch("routing.router.knn", Seen())
    there.watch("routing.router.knn", refuse)
    await here.start()
    await there.start()
    await here.publish("routing.router.knn", {"sha256": "abc"})
    await there.resync()
    await there.resync()

    assert attempts == [1]  # not retried on every resync
    reports = (await here.cluster())["instances"]
    assert reports["b"]["failed"] == {"routing.router.knn": "artifact abc not found here"}
    assert reports["a"]["failed"] == {}


async def test_without_shared_state_a_change_is_refused_or_applied_here_alone() -> None:
    shared = Flaky(MemoryStateStore())
    here = hub(shared, "a")
    seen = Seen()
    here.watch("routing", seen)
    await here.start()
    shared.down = True

    with pytest.raises(StateUnavailable):
        await here.publish("routing", {"name": "cost"})
    assert seen.changes == []

    assert await here.publish("routing", {"name": "cost"}, local_if_unavailable=True) is None
    assert seen.last == {"name": "cost"}

    shared.down = False
    await here.resync()  # nothing shared: back to the configured value, which None stands for
    assert seen.changes[-1].value is None
    assert (await here.cluster())["instances"]["a"]["local_only"] == []


async def test_racing_changes_from_two_processes_end_on_the_one_the_store_kept() -> None:
    store = MemoryStateStore()
    here, there = hub(store, "a"), hub(store, "b")
    seen_here, seen_there = Seen(), Seen()
    here.watch("routing", seen_here)
    there.watch("routing", seen_there)
    await here.start()
    await there.start()
    await asyncio.gather(*(node.publish("routing", {"n": n}) for n, node in enumerate([here, there] * 5)))

    stored = await store.get_version(RECORDS, "routing")
    assert stored is not None and stored[0] == 10
    assert seen_here.last == seen_there.last == stored[1]
    assert here.applied() == there.applied() == {"routing": 10}


async def test_a_store_that_lost_its_data_cannot_pin_processes_to_an_old_version() -> None:
    store = MemoryStateStore()
    here, there = hub(store, "a"), hub(store, "b")
    seen_there = Seen()
    here.watch("routing", Seen())
    there.watch("routing", seen_there)
    await here.start()
    await there.start()
    for n in range(3):
        await here.publish("routing", {"n": n})
    store.clear()  # Redis restarted without persistence

    assert await here.publish("routing", {"n": "after"}) == 4  # never below what was applied
    fresh = hub(store, "c")
    fresh.watch("routing", Seen())
    await fresh.start()
    store.clear()
    assert await fresh.publish("routing", {"n": "fresh"}) == 5  # above the 4 it applied
    await there.resync()
    assert seen_there.last == {"n": "fresh"}


async def test_processes_put_back_what_a_store_that_lost_its_data_forgot_and_the_newest_wins() -> None:
    store = MemoryStateStore()
    ahead, behind = hub(store, "a"), hub(store, "b")
    seen_behind = Seen()
    ahead.watch("routing", Seen())
    behind.watch("routing", seen_behind)
    await ahead.start()
    await behind.start()
    await ahead.publish("routing", {"n": 1})
    await store.put_version(RECORDS, "routing", {"n": 2})  # reaches "ahead" only
    await ahead.resync()
    store.clear()  # restarted empty before "behind" looked

    await behind.resync()  # puts back its version 1
    await ahead.resync()  # puts back 2, which is newer
    await behind.resync()  # and follows it
    assert seen_behind.last == {"n": 2}
    assert ahead.applied() == behind.applied() == {"routing": 2}
