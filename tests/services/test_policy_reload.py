"""A policy reload reaches another worker through Redis (the notice, not polling, delivers it), and a
worker whose file differs from the reloaded one says so instead of silently serving other rules."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from routeiq.governance.policy import SUBJECT, PolicyEngine
from routeiq.settings import PolicySettings
from routeiq.state.changes import LiveChanges
from tests.support.eventually import eventually
from tests.support.redis_store import open_redis_store, purge

DELIVERY_TIMEOUT = 5.0


def write(path: Path, text: str) -> None:
    """Write and move the mtime on, so a change is seen even within the clock's granularity."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


async def test_a_reload_reaches_another_worker_through_redis(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, "rules: [{name: first, action: deny}]")
    prefix = f"test:{uuid.uuid4().hex}:"
    here, there = await open_redis_store(prefix), await open_redis_store(prefix)
    settings = PolicySettings(file=str(path), reload_interval_seconds=0)  # no polling: only the notice
    hubs = [LiveChanges(here, "here", resync_seconds=3600), LiveChanges(there, "there", resync_seconds=3600)]
    other_path = tmp_path / "other.yaml"  # the second worker reads its own copy
    write(other_path, "rules: [{name: first, action: deny}]")
    engines = [PolicyEngine(settings, path, hubs[0]), PolicyEngine(settings, other_path, hubs[1])]
    try:
        for hub, engine in zip(hubs, engines, strict=True):
            await hub.start()
            await engine.start()
        for store in (here, there):
            assert await store.wait_subscribed(DELIVERY_TIMEOUT)
        write(path, "rules: [{name: second, action: deny}]")
        write(other_path, "rules: [{name: second, action: deny}]")
        reloaded, version = await engines[0].reload()
        assert reloaded.rules[0].name == "second" and version is not None

        def delivered() -> None:
            assert hubs[1].applied() == {SUBJECT: version}

        await eventually(delivered, timeout=DELIVERY_TIMEOUT)
        assert engines[1].rules.digest == reloaded.digest

        write(path, "rules: [{name: third, action: deny}]")  # the other copy was not updated
        _, version = await engines[0].reload()

        async def mismatch_reported() -> None:
            report = (await hubs[0].cluster())["instances"]["there"]
            assert report["applied"] == {SUBJECT: version}
            assert "the reload announced" in report["failed"][SUBJECT]

        await eventually(mismatch_reported, timeout=DELIVERY_TIMEOUT)
        assert engines[1].rules.rules[0].name == "second"  # its own file's rules, and it says so
    finally:
        for engine in engines:
            await engine.close()
        for hub in hubs:
            await hub.close()
        await here.close()
        await there.close()
        await purge(prefix)
