"""The live-change mechanism on a real Redis: versions are atomic, notices travel between processes'
stores, and a dropped notice connection is repaired by the resync it triggers on reconnect."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from routeiq.state.changes import RECORDS, Change, LiveChanges
from tests.support.eventually import eventually
from tests.support.redis_store import RedisServer, open_redis_store, purge


async def test_versions_and_values_change_together_and_concurrent_writers_never_share_one() -> None:
    prefix = f"changes:{uuid.uuid4().hex}:"
    store = await open_redis_store(prefix)
    try:
        versions = await asyncio.gather(*(store.put_version(RECORDS, "s", {"n": n}) for n in range(20)))
        assert sorted(versions) == list(range(1, 21))
        assert await store.versions(RECORDS) == {"s": 20}
        stored = await store.get_version(RECORDS, "s")
        assert stored is not None and stored[0] == 20 and stored[1] in [{"n": n} for n in range(20)]
        assert await store.put_version(RECORDS, "s", {"n": "floor"}, floor=50) == 51
        assert await store.get_version(RECORDS, "missing") is None

        await store.put_entry("changes:instances", "a", {"applied": {"s": 51}})
        await store.put_entry("changes:instances", "b", {"applied": {}})
        await store.delete_entries("changes:instances", ["b"])
        assert await store.entries("changes:instances") == {"a": {"applied": {"s": 51}}}
    finally:
        await store.close()
        await purge(prefix)


async def test_a_change_reaches_another_process_by_its_notice() -> None:
    prefix = f"changes:{uuid.uuid4().hex}:"
    here_store, there_store = await open_redis_store(prefix), await open_redis_store(prefix)
    here = LiveChanges(here_store, "here", resync_seconds=3600)  # no periodic help: the notice must do it
    there = LiveChanges(there_store, "there", resync_seconds=3600)
    seen: list[Change] = []
    here.watch("routing.strategies", lambda change: None)
    there.watch("routing.strategies", seen.append)
    try:
        await here.start()
        await there.start()
        assert await there_store.wait_subscribed(5)
        version = await here.publish("routing.strategies", {"default": "cost-based-routing"})

        def applied_there() -> None:
            assert there.applied() == {"routing.strategies": version}

        await eventually(applied_there, timeout=5)
        assert seen[-1].value == {"default": "cost-based-routing"}
    finally:
        for node in (here, there):
            await node.close()
        await here_store.close()
        await there_store.close()
        await purge(prefix)


async def test_after_the_notice_connection_drops_the_reconnect_resync_applies_what_was_missed(
    tmp_path: Path,
) -> None:
    with RedisServer(tmp_path) as server:
        store = await open_redis_store("changes:", url=server.url)
        listener = LiveChanges(store, "listener", resync_seconds=3600)
        seen: list[Change] = []
        listener.watch("policy", seen.append)
        store.add_reconnect_hook(listener.resync)
        try:
            await listener.start()
            assert await store.wait_subscribed(5)
            server.restart()  # empty, every connection gone: whatever is announced now is missed
            writer = await open_redis_store("changes:", url=server.url)
            await writer.put_version(RECORDS, "policy", {"digest": "after-restart"})  # no notice at all
            await writer.close()

            def caught_up() -> None:
                assert seen and seen[-1].value == {"digest": "after-restart"}

            await eventually(caught_up, timeout=10)
        finally:
            await listener.close()
            await store.close()
