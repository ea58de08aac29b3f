"""Virtual keys: issue, look up, change, rotate and revoke data-plane credentials.

A secret is shown once, at creation or rotation. The store keeps its sha256 (the secret carries 256
random bits, so a plain digest is enough) and a short prefix for display. Lookups go by digest, so
no comparison ever runs over the secret itself. Each worker caches what it looked up for
``key_cache_seconds``; every change goes out as the live change ``keys`` so that all workers and
replicas forget the key at once (revocation does not wait for the cache). A worker that missed a
change (versions skipped) forgets its whole cache: it cannot know which keys changed.

Callers that miss the cache for the same key at the same moment share one database lookup: when a
busy key's entry expires, the requests in flight must not each query the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from routeiq.errors import KeyRefused
from routeiq.governance.identity import Identity
from routeiq.governance.limits import Limit
from routeiq.state.changes import Change, LiveChanges
from routeiq.store.keys import KeyRepository
from routeiq.store.records import KeyRecord

logger = logging.getLogger("routeiq.keys")

SECRET_PREFIX = "sk-riq-"
DISPLAY_PREFIX_LENGTH = len(SECRET_PREFIX) + 4
SUBJECT = "keys"
MAX_CACHED = 50_000


class KeyNotUsable(Exception):
    """A change that only makes sense for a live key (rotation) was asked of a revoked or expired one."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_virtual_key(secret: str) -> bool:
    """Every secret RouteIQ issues starts with ``SECRET_PREFIX``: one that does is meant as a virtual
    key, whether or not it is (still) valid."""
    return secret.startswith(SECRET_PREFIX)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def identity_of(record: KeyRecord) -> Identity:
    return Identity(
        kind="virtual_key",
        key_id=record.key_id,
        team=record.team,
        user=record.user,
        allowed_groups=tuple(record.allowed_groups),
        allowed_models=tuple(record.allowed_models),
        limits=tuple(Limit.model_validate(limit) for limit in record.limits),
        metadata=dict(record.metadata),
    )


@dataclass(frozen=True, slots=True)
class _Cached:
    record: KeyRecord | None  # None: no such key
    identity: Identity | None
    until: float


class VirtualKeys:
    def __init__(
        self,
        repository: KeyRepository,
        changes: LiveChanges,
        cache_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._changes = changes
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._lookups: dict[str, asyncio.Future[_Cached]] = {}  # by key hash, while in flight
        self._forgotten = 0  # changes applied so far: a lookup that overlapped one is not cached
        # Not caught up at startup: the cache starts empty, so nothing stored before can be stale in it.
        changes.watch(SUBJECT, self._forget, catch_up=False)

    async def authenticate(self, secret: str) -> Identity | None:
        """The identity behind ``secret``; None if no key has it; ``KeyRefused`` if revoked or expired."""
        key_hash = digest(secret)
        now = self._clock()
        cached = self._cache.get(key_hash)
        if cached is None or cached.until <= now:
            cached = await self._look_up(key_hash, now)
        record = cached.record
        if record is None:
            return None
        if record.revoked_at is not None:
            raise KeyRefused("key_revoked", "this API key has been revoked")
        if record.expires_at is not None and record.expires_at <= now:
            raise KeyRefused("key_expired", "this API key has expired")
        return cached.identity

    async def _look_up(self, key_hash: str, now: float) -> _Cached:
        pending = self._lookups.get(key_hash)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(key_hash, now))
            self._lookups[key_hash] = pending
            pending.add_done_callback(lambda done: self._lookup_done(key_hash, done))
        # Shielded: a caller that goes away must not cancel the lookup the others wait for.
        return await asyncio.shield(pending)

    def _lookup_done(self, key_hash: str, done: asyncio.Future[_Cached]) -> None:
        if self._lookups.get(key_hash) is done:
            del self._lookups[key_hash]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone away

    async def _fetch(self, key_hash: str, now: float) -> _Cached:
        forgotten = self._forgotten
        record = await self._repository.by_hash(key_hash)
        if record is not None and not hmac.compare_digest(record.key_hash, key_hash):
            record = None
        cached = _Cached(
            record, identity_of(record) if record is not None else None, now + self._cache_seconds
        )
        # A change applied while the lookup ran may be about this key: serve what was read to the
        # callers that asked before it, but do not keep it (callers after it start a new lookup).
        if forgotten == self._forgotten:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()  # bounded: random keys sprayed at the gateway cannot grow it
            self._cache[key_hash] = cached
        return cached

    async def create(self, fields: dict[str, Any], created_by: str) -> tuple[KeyRecord, str]:
        secret = new_secret()
        now = self._clock()
        record = KeyRecord(
            key_id=new_key_id(),
            key_hash=digest(secret),
            key_prefix=secret[:DISPLAY_PREFIX_LENGTH],
            created_at=now,
            updated_at=now,
            created_by=created_by,
            **fields,
        )
        await self._repository.insert(record)
        return record, secret

    async def get(self, key_id: str) -> KeyRecord | None:
        return await self._repository.get(key_id)

    async def list(self, **filters: Any) -> list[KeyRecord]:
        return await self._repository.list(**filters)

    async def update(self, key_id: str, changes: dict[str, Any]) -> KeyRecord | None:
        before = await self._repository.get(key_id)
        if before is None:
            return None
        record = await self._repository.update(key_id, **changes)
        await self._announce(before.key_hash)
        return record

    async def rotate(self, key_id: str) -> tuple[KeyRecord, str] | None:
        """A new secret for the same key; the old one stops working at once. ``KeyNotUsable`` for a
        revoked key (revocation is final) or an expired one (extend ``expires_at`` first)."""
        before = await self._repository.get(key_id)
        if before is None:
            return None
        if before.revoked_at is not None:
            raise KeyNotUsable(
                "key_revoked", f"key {key_id!r} is revoked: revocation is final, issue a new key"
            )
        if before.expires_at is not None and before.expires_at <= self._clock():
            raise KeyNotUsable(
                "key_expired", f"key {key_id!r} has expired: extend expires_at (PATCH) before rotating it"
            )
        secret = new_secret()
        record = await self._repository.update(
            key_id, key_hash=digest(secret), key_prefix=secret[:DISPLAY_PREFIX_LENGTH]
        )
        await self._announce(before.key_hash)
        return (record, secret) if record is not None else None

    async def revoke(self, key_id: str) -> KeyRecord | None:
        before = await self._repository.get(key_id)
        if before is None:
            return None
        if before.revoked_at is not None:
            return before
        record = await self._repository.update(key_id, revoked_at=self._clock())
        await self._announce(before.key_hash)
        return record

    async def _announce(self, key_hash: str) -> None:
        # With Redis away only this worker forgets at once; the others within the cache time.
        await self._changes.publish(SUBJECT, {"forget": key_hash}, local_if_unavailable=True)

    def _forget(self, change: Change) -> None:
        self._forgotten += 1
        self._lookups.clear()
        key_hash = (change.value or {}).get("forget")
        if change.follows_previous and isinstance(key_hash, str):
            self._cache.pop(key_hash, None)
        else:
            self._cache.clear()
