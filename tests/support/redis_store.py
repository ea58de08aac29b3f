"""Open a real RedisStateStore for tests (failing loudly if Redis is down), and clean up after."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from routeiq.state.base import StateStore, StateUnavailable
from routeiq.state.memory import MemoryStateStore
from routeiq.state.redis import RedisStateStore, create_redis_store

REDIS_URL = "redis://127.0.0.1:6379/0"


async def open_redis_store(
    prefix: str, url: str = REDIS_URL, timeout_seconds: float = 0.5
) -> RedisStateStore:
    store = create_redis_store(url, key_prefix=prefix, timeout_seconds=timeout_seconds)
    try:
        await store.ping()
    except StateUnavailable as error:
        await store.close()
        pytest.fail(f"Redis is required at {url} ({error}); start it with scripts/services.sh")
    await store.start()
    return store


async def purge(prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def state_store(kind: str, name: str = "test") -> AsyncIterator[StateStore]:
    """A started ``memory`` store, or a ``redis`` one under a fresh key prefix purged afterwards:
    for suites that run once against each."""
    if kind == "memory":
        memory = MemoryStateStore()
        await memory.start()
        try:
            yield memory
        finally:
            await memory.close()
        return
    prefix = f"{name}:{uuid.uuid4().hex}:"
    shared = await open_redis_store(prefix)
    try:
        yield shared
    finally:
        await shared.close()
        await purge(prefix)
