"""A virtual key's expiry, judged by the key service's clock: the test moves time instead of waiting
for it (the end-to-end test in tests/e2e/test_keys.py lets one real second pass on a server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from routeiq.governance.keys import KeyRefused, VirtualKeys
from routeiq.state.changes import LiveChanges
from routeiq.state.memory import MemoryStateStore
from routeiq.store.database import Database
from routeiq.store.keys import KeyRepository

CACHE_SECONDS = 60.0  # far longer than the key lives: the cache must not outlive the expiry


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    opened = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    await opened.upgrade()
    yield opened
    await opened.close()


@pytest.fixture
async def store() -> AsyncIterator[MemoryStateStore]:
    opened = MemoryStateStore()
    await opened.start()
    yield opened
    await opened.close()


def key_service(database: Database, store: MemoryStateStore, clock: Clock) -> VirtualKeys:
    changes = LiveChanges(store, "test-instance", clock=clock)
    return VirtualKeys(KeyRepository(database), changes, CACHE_SECONDS, clock=clock)


async def test_a_cached_key_is_refused_from_the_moment_it_expires(
    database: Database, store: MemoryStateStore
) -> None:
    clock = Clock()
    keys = key_service(database, store, clock)
    record, secret = await keys.create({"expires_at": clock.now + 30, "team": "ml"}, created_by="admin")

    identity = await keys.authenticate(secret)  # now cached for a minute
    assert identity is not None and identity.key_id == record.key_id and identity.team == "ml"
    clock.now += 29.999
    assert await keys.authenticate(secret) is not None
    clock.now += 0.001  # expires_at itself is already too late
    with pytest.raises(KeyRefused) as refused:
        await keys.authenticate(secret)
    assert refused.value.code == "key_expired"


async def test_a_key_without_expiry_outlives_any_clock(database: Database, store: MemoryStateStore) -> None:
    clock = Clock()
    keys = key_service(database, store, clock)
    _, secret = await keys.create({}, created_by="admin")
    clock.now += 10 * 365 * 86_400
    assert await keys.authenticate(secret) is not None
    assert await keys.authenticate("sk-not-a-key") is None
