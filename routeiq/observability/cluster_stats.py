"""Request counters for the whole cluster, kept in the StateStore.

Each worker counts locally and adds its counts to one shared hash every half second, so the admin
API shows every worker's and replica's requests, each counted exactly once, without a Redis round
trip on the request path. While Redis is away the counts wait in the worker and are added when it
returns; the snapshot then says it only covers this worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from routeiq.periodic import every, stop
from routeiq.state.base import StateStore, StateUnavailable

logger = logging.getLogger("routeiq.stats")

KEY = "stats:requests"
FLUSH_SECONDS = 0.5


class ClusterStats:
    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._pending: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    def count(self, group: str, deployment: str, outcome: str) -> None:
        self._pending[f"{group}|{deployment}|{outcome}"] += 1

    async def start(self) -> None:
        self._task = every(FLUSH_SECONDS, self.flush, "stats flush")

    async def close(self) -> None:
        if self._task is not None:
            await stop([self._task])
        with contextlib.suppress(Exception):
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, Counter()
        try:
            await self._store.hincr(KEY, dict(batch))
        except Exception:
            self._pending.update(batch)  # keep them for the next flush rather than lose them
            raise

    async def snapshot(self) -> dict[str, object]:
        """Cluster-wide totals by group, deployment and outcome (this worker's unflushed counts included)."""
        scope = "cluster"
        try:
            counts = Counter(await self._store.hgetall(KEY))
        except StateUnavailable:
            counts, scope = Counter(), "this worker only (shared state unreachable)"
        counts.update(self._pending)
        by_deployment: dict[str, dict[str, int]] = {}
        total = 0
        for field, value in counts.items():
            group, deployment, outcome = field.split("|", 2)
            entry = by_deployment.setdefault(deployment, {"group": group, "ok": 0, "error": 0})  # type: ignore[dict-item]
            entry[outcome] = entry.get(outcome, 0) + value
            total += value
        return {
            "total": total,
            "deployments": by_deployment,
            "scope": scope,
            "backend": self._store.backend,
        }
