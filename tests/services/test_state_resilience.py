"""Losing and regaining Redis: a ``RedisStateStore`` behind a ``TcpProxy`` the tests cut and restore.

Fail-open calls keep working (per-process, counted, fast), fail-closed ones are refused, health says
so; once the proxy forwards again everything is back on Redis and the notice listener has
reconnected by itself. Time bounds are generous on purpose: the machine is slow and noisy.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from routeiq.config import load_settings
from routeiq.state.base import StateUnavailable, Window
from routeiq.state.memory import MemoryStateStore
from routeiq.state.redis import RedisStateStore, create_redis_store
from routeiq.state.resilient import ResilientStateStore, StateHealth
from tests.support.eventually import eventually
from tests.support.redis_store import RedisSentinel, RedisServer, open_redis_store, purge
from tests.support.tcp_proxy import TcpProxy

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
TIMEOUT_SECONDS = 0.5
FAST_SECONDS = 0.25  # "fast": well under the Redis timeout, generous for a noisy machine
FIRST_FAILURE_SECONDS = 3.0  # the first call after the cut may wait for a timeout; bounded anyway
RECOVERY_SECONDS = 10.0


@dataclass
class Setup:
    proxy: TcpProxy
    primary: RedisStateStore  # through the proxy
    direct: RedisStateStore  # straight to Redis, same prefix: what other processes see
    health: StateHealth
    open_store: ResilientStateStore  # fail-open feature
    closed_store: ResilientStateStore  # fail-closed feature


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy(REDIS_HOST, REDIS_PORT) as running:
        yield running


@pytest.fixture
async def setup(proxy: TcpProxy) -> AsyncIterator[Setup]:
    prefix = f"test:{uuid.uuid4().hex}:"
    primary = await open_redis_store(prefix, proxy.url, TIMEOUT_SECONDS)
    direct = await open_redis_store(prefix, REDIS_URL, TIMEOUT_SECONDS)
    health = StateHealth()
    fallback = MemoryStateStore()
    yield Setup(
        proxy,
        primary,
        direct,
        health,
        ResilientStateStore(primary, fallback, feature="quota", fail_open=True, health=health),
        ResilientStateStore(primary, fallback, feature="breaker", fail_open=False, health=health),
    )
    proxy.restore()
    await primary.close()
    await direct.close()
    await purge(prefix)


async def timed(call: Awaitable[Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


async def test_fail_open_serves_from_the_fallback_quickly(setup: Setup) -> None:
    assert await setup.open_store.incr("hits", 5) == 5  # on Redis
    setup.proxy.cut()

    value, elapsed = await timed(setup.open_store.incr("hits"))
    assert value == 1  # per-process state, starting afresh
    assert elapsed < FIRST_FAILURE_SECONDS
    assert setup.health.degraded
    assert setup.health.reason and "redis" in setup.health.reason

    for expected in range(2, 12):
        value, elapsed = await timed(setup.open_store.incr("hits"))
        assert value == expected
        assert elapsed < FAST_SECONDS
    assert setup.health.fallbacks["quota"] == 11
    assert "breaker" not in setup.health.fallbacks


async def test_on_fallback_listener_hears_every_fallback(setup: Setup) -> None:
    heard: list[str] = []
    setup.health.on_fallback = heard.append
    setup.proxy.cut()
    await setup.open_store.window_incr("tokens", Window.MINUTE, 3)
    await setup.open_store.get_record("anything")
    assert heard == ["quota", "quota"]


async def test_fail_closed_refuses_quickly(setup: Setup) -> None:
    setup.proxy.cut()
    started = time.monotonic()
    with pytest.raises(StateUnavailable):
        await setup.closed_store.incr("failures")
    assert time.monotonic() - started < FIRST_FAILURE_SECONDS
    for _ in range(5):
        started = time.monotonic()
        with pytest.raises(StateUnavailable):
            await setup.closed_store.set_record_if_absent("probe", {"at": 1})
        assert time.monotonic() - started < FAST_SECONDS
    assert setup.health.degraded and setup.health.reason
    assert setup.health.fallbacks == {}  # refused, not served locally


async def test_back_on_redis_after_restore(setup: Setup) -> None:
    await setup.direct.incr("hits", 40)
    await setup.direct.set_record("strategy", {"name": "cost"})
    setup.proxy.cut()
    assert await setup.open_store.incr("hits") == 1  # local
    await setup.open_store.set_record("strategy", {"name": "outage-local"})
    with pytest.raises(StateUnavailable):
        await setup.closed_store.get_int("hits")
    assert setup.health.degraded

    setup.proxy.restore()

    async def redis_answers() -> bool:
        return await setup.open_store.get_int("hits") == 40

    await eventually(redis_answers, timeout=RECOVERY_SECONDS)  # the fail-open store reads Redis again
    assert not setup.health.degraded and setup.health.reason is None
    assert await setup.open_store.incr("hits", 2) == 42
    assert await setup.direct.get_int("hits") == 42  # other processes see it
    assert await setup.closed_store.get_int("hits") == 42
    assert await setup.open_store.get_record("strategy") == {"name": "cost"}  # Redis is the truth again


async def test_outage_state_does_not_resurface_in_the_next_outage(setup: Setup) -> None:
    setup.proxy.cut()
    await setup.open_store.set_record("breaker:gpt", {"open": True})
    setup.proxy.restore()

    async def recovered() -> bool:
        await setup.open_store.get_int("anything")
        return not setup.health.degraded

    await eventually(recovered, timeout=RECOVERY_SECONDS)
    setup.proxy.cut()
    await setup.open_store.get_int("trip")  # degrade again
    assert setup.health.degraded
    assert await setup.open_store.get_record("breaker:gpt") is None


async def test_notices_during_an_outage_stay_in_process(setup: Setup) -> None:
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    setup.open_store.subscribe("routing", received.put_nowait)
    assert await setup.open_store.wait_subscribed(RECOVERY_SECONDS)
    setup.proxy.cut()
    await setup.open_store.publish("routing", {"name": "local"})
    assert await asyncio.wait_for(received.get(), RECOVERY_SECONDS) == {"name": "local"}


async def test_listener_reconnects_by_itself_and_runs_the_hooks(setup: Setup) -> None:
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    reconnects: list[float] = []
    async_reconnects: list[float] = []

    async def async_hook() -> None:
        async_reconnects.append(time.monotonic())

    def broken_hook() -> None:
        raise RuntimeError("hook bug")  # logged; the others still run

    setup.open_store.subscribe("breakers", received.put_nowait)
    setup.open_store.add_reconnect_hook(broken_hook)
    setup.open_store.add_reconnect_hook(lambda: reconnects.append(time.monotonic()))
    setup.open_store.add_reconnect_hook(async_hook)
    assert await setup.open_store.wait_subscribed(RECOVERY_SECONDS)
    await setup.direct.publish("breakers", {"n": 1})
    assert await asyncio.wait_for(received.get(), RECOVERY_SECONDS) == {"n": 1}
    hooks_before = len(reconnects)

    setup.proxy.cut()
    await setup.direct.publish("breakers", {"n": 2})  # lost: the listener is disconnected

    async def listener_lost() -> bool:
        return not await setup.open_store.wait_subscribed(0.01)

    await eventually(listener_lost, timeout=RECOVERY_SECONDS)  # so the restore is a reconnection
    setup.proxy.restore()

    async def hook_ran() -> bool:
        return len(reconnects) > hooks_before

    await eventually(hook_ran, timeout=RECOVERY_SECONDS)
    assert len(async_reconnects) == len(reconnects)
    assert await setup.open_store.wait_subscribed(RECOVERY_SECONDS)
    await setup.direct.publish("breakers", {"n": 3})
    assert await asyncio.wait_for(received.get(), RECOVERY_SECONDS) == {"n": 3}


async def test_ping_tells_the_truth_and_updates_health(setup: Setup) -> None:
    await setup.open_store.ping()
    setup.proxy.cut()
    with pytest.raises(StateUnavailable, match="redis unreachable"):
        await setup.open_store.ping()
    assert setup.health.degraded
    setup.proxy.restore()
    await setup.open_store.ping()
    assert not setup.health.degraded


async def test_redis_store_raises_state_unavailable_with_a_short_reason(setup: Setup) -> None:
    setup.proxy.cut()
    with pytest.raises(StateUnavailable) as caught:
        await setup.primary.incr("x")
    assert str(caught.value).startswith("redis unreachable: ")
    assert len(str(caught.value)) < 100


async def test_a_dead_address_fails_within_the_timeout() -> None:
    """Nothing listens on the proxy's old port: connecting fails fast, nothing hangs."""
    with TcpProxy(REDIS_HOST, REDIS_PORT) as gone:
        url = gone.url
    store = create_redis_store(url, key_prefix="test:dead:", timeout_seconds=TIMEOUT_SECONDS)
    try:
        started = time.monotonic()
        with pytest.raises(StateUnavailable):
            await store.get_int("x")
        assert time.monotonic() - started < FIRST_FAILURE_SECONDS
        await store.start()  # does not raise: the listener keeps trying in the background
    finally:
        await store.close()


# --- a Redis of the test's own: dropped connections and restarts are not outages -------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as server:
        yield server


async def own_store(
    server: RedisServer, timeout_seconds: float = TIMEOUT_SECONDS
) -> tuple[RedisStateStore, StateHealth, ResilientStateStore]:
    """A fail-closed feature on ``server``: any failure would show as ``StateUnavailable``."""
    shared = await open_redis_store("own:", server.url, timeout_seconds)
    health = StateHealth()
    closed = ResilientStateStore(shared, MemoryStateStore(), feature="quotas", fail_open=False, health=health)
    return shared, health, closed


async def test_killed_connections_are_replaced_without_failing_a_call(own_redis: RedisServer) -> None:
    shared, health, closed = await own_store(own_redis)
    try:
        await asyncio.gather(*(closed.incr("hits") for _ in range(20)))  # a pool of several connections
        assert own_redis.kill_clients() >= 2  # the pooled ones and the notice listener's
        # Each pooled connection is dead now: each call on one retries once, on a fresh connection.
        counts = await asyncio.gather(*(closed.incr("hits") for _ in range(20)))
        assert sorted(counts) == list(range(21, 41))
        assert not health.degraded and health.fallbacks == {}
        assert await shared.wait_subscribed(RECOVERY_SECONDS)  # the listener is back too
    finally:
        await shared.close()


async def test_a_restarted_redis_serves_the_next_calls(own_redis: RedisServer) -> None:
    shared, health, closed = await own_store(own_redis)
    try:
        await asyncio.gather(*(closed.incr("hits") for _ in range(10)))
        own_redis.restart()  # empty (no persistence), every connection gone
        counts = await asyncio.gather(*(closed.incr("hits") for _ in range(10)))
        assert sorted(counts) == list(range(1, 11))
        assert not health.degraded and health.fallbacks == {}
    finally:
        await shared.close()


async def test_a_burst_beyond_a_hundred_connections_waits_for_one(own_redis: RedisServer) -> None:
    """redis-py's default pool fails the 101st concurrent call at once; ours has room for it."""
    # A generous timeout: opening ~150 connections at once is slow on a busy machine, and what is
    # tested here is the pool's limit, not Redis's speed.
    shared, health, closed = await own_store(own_redis, timeout_seconds=3.0)
    try:
        counts = await asyncio.gather(*(closed.incr("hits") for _ in range(150)))
        assert sorted(counts) == list(range(1, 151))
        assert not health.degraded
    finally:
        await shared.close()


def test_the_routers_redis_client_gets_routeiqs_timeouts(tmp_path: Path) -> None:
    """LiteLLM's default is a 5 s socket timeout: a frozen Redis would hold every call that long."""
    from routeiq.runtime import build_router  # imports LiteLLM (seconds): only this test pays

    config = tmp_path / "config.yaml"
    deployment = {"model_name": "a", "litellm_params": {"model": "openai/x", "mock_response": "hi"}}
    config.write_text(yaml.safe_dump({"model_list": [deployment]}))
    environ = {"ROUTEIQ_REDIS_URL": "redis://127.0.0.1:6379/5", "ROUTEIQ_REDIS_TIMEOUT_SECONDS": "0.25"}
    router = build_router(load_settings(config, environ=environ))
    redis_cache = router.health().store.redis_cache
    for options in (redis_cache.redis_kwargs, redis_cache.store_settings.redis_kwargs):
        assert options["socket_timeout"] == 0.25
        assert options["socket_connect_timeout"] == 0.25


async def test_a_sentinel_store_takes_a_burst_and_killed_connections(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    """Through Sentinel too: each new connection asks a Sentinel for the master first, so both pools
    need the room, and dropped connections are retried the same way."""
    with RedisSentinel(own_redis, tmp_path) as sentinel:
        store = create_redis_store(
            None,
            sentinels=[sentinel.address],
            sentinel_master=sentinel.name,
            key_prefix="own:",
            timeout_seconds=3.0,
        )
        try:
            counts = await asyncio.gather(*(store.incr("hits") for _ in range(150)))
            assert sorted(counts) == list(range(1, 151))
            assert own_redis.kill_clients() >= 1
            counts = await asyncio.gather(*(store.incr("hits") for _ in range(20)))
            assert sorted(counts) == list(range(151, 171))
        finally:
            await store.close()
