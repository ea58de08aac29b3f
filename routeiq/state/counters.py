"""Counters a process adds to hashes in the StateStore in batches, not once per request.

Requests count into a local table; every ``flush_seconds`` the table goes to the store in one
``hincr`` per hash. Counts the store could not take (Redis away) stay in the table for the next
flush, so each is added exactly once; ``pending`` lets a reader add this process's unflushed counts
to what the store holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Mapping

from routeiq.periodic import every, stop
from routeiq.state.base import StateStore


class SharedCounters:
    def __init__(self, store: StateStore, flush_seconds: float, what: str) -> None:
        self._store = store
        self._flush_seconds = flush_seconds
        self._what = what  # names the flush task (and its log lines)
        # Plain dicts, not Counters: ``add`` runs several times per request, and Counter.update is
        # several Python-level checks per call.
        self._pending: dict[str, dict[str, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self.failing = False  # the last flush could not reach the store

    def add(self, key: str, amounts: Mapping[str, int]) -> None:
        pending = self._table(key)
        for field, amount in amounts.items():
            pending[field] = pending.get(field, 0) + amount

    def incr(self, key: str, field: str, amount: int = 1) -> None:
        pending = self._table(key)
        pending[field] = pending.get(field, 0) + amount

    def _table(self, key: str) -> dict[str, int]:
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = {}
        return pending

    def pending(self, key: str) -> Counter[str]:
        """This process's counts of ``key`` not yet in the store."""
        return Counter(self._pending.get(key, ()))

    @property
    def waiting(self) -> int:
        """How many hashes have counts waiting for the store."""
        return len(self._pending)

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)

    async def start(self) -> None:
        self._task = every(self._flush_seconds, self.flush, self._what)

    async def close(self) -> None:
        if self._task is not None:
            await stop([self._task])
        with contextlib.suppress(Exception):
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        for index, (key, amounts) in enumerate(batch.items()):
            try:
                await self._store.hincr(key, dict(amounts))
            except Exception:
                for unwritten, fields in list(batch.items())[index:]:  # kept for the next flush
                    self.add(unwritten, fields)
                self.failing = True
                raise
        self.failing = False
