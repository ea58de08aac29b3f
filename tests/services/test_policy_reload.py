"""A policy reload reaches another worker through Redis: the notice, not polling, delivers it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from routeiq.governance.policy import PolicyEngine
from routeiq.settings import PolicySettings
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
    engines = [PolicyEngine(settings, path, here), PolicyEngine(settings, path, there)]
    try:
        for engine in engines:
            await engine.start()
        for store in (here, there):
            assert await store.wait_subscribed(DELIVERY_TIMEOUT)
        write(path, "rules: [{name: second, action: deny}]")
        reloaded = await engines[0].reload()
        assert reloaded.rules[0].name == "second"

        def delivered() -> None:
            assert engines[1].rules.rules[0].name == "second"

        await eventually(delivered, timeout=DELIVERY_TIMEOUT)
        assert engines[1].rules.digest == reloaded.digest
    finally:
        for engine in engines:
            await engine.close()
        await here.close()
        await there.close()
        await purge(prefix)
