"""Counters a process adds to hashes in the StateStore in batches, not once per request.

Requests count into a local table; every ``flush_seconds`` the table goes to the store, one batch
per hash. Each batch is numbered and added with ``hincr_once``: a batch whose answer was lost (Redis
went away mid-call, a timeout) is resent as it was and the store adds it only if the first send did
not, so every count reaches the store exactly once. Counts the store could not take stay in the
table for the next flush; ``pending`` lets a reader add this process's unflushed counts to what the
store holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from routeiq.periodic import every, stop
from routeiq.state.base import StateStore


@dataclass(frozen=True, slots=True)
class _Batch:
    key: str
    number: int
    amounts: dict[str, int]


class SharedCounters:
    def __init__(self, store: StateStore, flush_seconds: float, what: str) -> None:
        self._store = store
        self._flush_seconds = flush_seconds
        self._what = what  # names the flush task (and its log lines)
        # Plain dicts, not Counters: ``add`` runs several times per request, and Counter.update is
        # several Python-level checks per call.
        self._pending: dict[str, dict[str, int]] = {}
        self._writer = secrets.token_hex(8)  # names this table's batches in the store
        self._batches = 0
        self._in_doubt: _Batch | None = None  # sent, not confirmed: resent before anything else
        self._flushing = asyncio.Lock()  # batches reach the store in the order they are numbered
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
        """This process's counts of ``key`` not known to be in the store."""
        counts = Counter(self._pending.get(key, ()))
        if self._in_doubt is not None and self._in_doubt.key == key:
            counts.update(self._in_doubt.amounts)
        return counts

    @property
    def waiting(self) -> int:
        """How many hashes have counts waiting for the store."""
        return len(self._pending) + (self._in_doubt is not None)

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)
        if self._in_doubt is not None and self._in_doubt.key == key:
            self._in_doubt = None

    async def start(self) -> None:
        self._task = every(self._flush_seconds, self.flush, self._what)

    async def close(self) -> None:
        if self._task is not None:
            await stop([self._task])
        with contextlib.suppress(Exception):
            await self.flush()

    async def flush(self) -> None:
        async with self._flushing:
            unsent, self._pending = self._pending, {}
            try:
                if self._in_doubt is not None:
                    await self._write(self._in_doubt)
                for key in list(unsent):
                    self._batches += 1
                    await self._write(_Batch(key, self._batches, unsent.pop(key)))
            except Exception:
                for key, amounts in unsent.items():  # never sent: they wait for the next flush
                    self.add(key, amounts)
                self.failing = True
                raise
            self.failing = False

    async def _write(self, batch: _Batch) -> None:
        self._in_doubt = batch  # until the store answers: a resend of it adds nothing twice
        await self._store.hincr_once(batch.key, batch.amounts, self._writer, batch.number)
        self._in_doubt = None
