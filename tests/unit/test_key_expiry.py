"""A virtual key's expiry, judged by the key service's clock: the test moves time instead of waiting
for it (the end-to-end test in tests/e2e/test_keys.py lets one real second pass on a server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from routeiq.governance.keys import KeyRefused, VirtualKeys
from routeiq.state.changes import LiveChanges
from routeiq.state.memory import MemoryStateStore
from routeiq.store.database import Database
from routeiq.store.keys import KeyRepository
from routeiq.store.records import KeyRecord

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


class CountingRepository(KeyRepository):
    """Counts lookups by hash; each reads the database at once but answers only when the test lets it."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.lookups = 0
        self.release = asyncio.Event()

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        self.lookups += 1
        record = await super().by_hash(key_hash)
        await self.release.wait()
        return record


async def test_callers_missing_the_cache_together_share_one_lookup(
    database: Database, store: MemoryStateStore
) -> None:
    clock = Clock()
    repository = CountingRepository(database)
    keys = VirtualKeys(
        repository, LiveChanges(store, "test-instance", clock=clock), CACHE_SECONDS, clock=clock
    )
    record, secret = await keys.create({"team": "ml"}, created_by="admin")

    waiting = [asyncio.create_task(keys.authenticate(secret)) for _ in range(50)]
    await asyncio.sleep(0.05)
    waiting[0].cancel()  # a caller that goes away does not cancel the others' lookup
    repository.release.set()
    identities = await asyncio.gather(*waiting[1:])
    assert repository.lookups == 1
    assert {identity.key_id for identity in identities if identity is not None} == {record.key_id}

    clock.now += CACHE_SECONDS  # expired: the next burst shares one new lookup
    await asyncio.gather(*(keys.authenticate(secret) for _ in range(20)))
    assert repository.lookups == 2


async def test_a_lookup_that_overlaps_a_revocation_is_not_cached(
    database: Database, store: MemoryStateStore
) -> None:
    clock = Clock()
    repository = CountingRepository(database)
    changes = LiveChanges(store, "test-instance", clock=clock)
    keys = VirtualKeys(repository, changes, CACHE_SECONDS, clock=clock)
    record, secret = await keys.create({}, created_by="admin")

    before = asyncio.create_task(keys.authenticate(secret))  # reads the key before the revocation
    await asyncio.sleep(0.05)
    await keys.revoke(record.key_id)
    repository.release.set()
    assert await before is not None  # served what it read before the revocation, but not kept
    with pytest.raises(KeyRefused) as refused:
        await keys.authenticate(secret)
    assert refused.value.code == "key_revoked"
    assert repository.lookups == 2
