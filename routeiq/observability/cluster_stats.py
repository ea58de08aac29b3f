"""Request counters for the whole cluster, kept in the StateStore.

Each worker counts locally and adds its counts to one shared hash every half second, so the admin
API shows every worker's and replica's requests, each counted exactly once, without a Redis round
trip on the request path. While Redis is away the counts wait in the worker and are added when it
returns; the snapshot then says it only covers this worker.
"""

from __future__ import annotations

import logging
from collections import Counter

from routeiq.state.base import StateStore, StateUnavailable
from routeiq.state.counters import SharedCounters

logger = logging.getLogger("routeiq.stats")

KEY = "stats:requests"
FLUSH_SECONDS = 0.5


class ClusterStats:
    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._counters = SharedCounters(store, FLUSH_SECONDS, "stats flush")

    def count(self, group: str, deployment: str, outcome: str) -> None:
        self._counters.incr(KEY, f"{group}|{deployment}|{outcome}")

    async def start(self) -> None:
        await self._counters.start()

    async def close(self) -> None:
        await self._counters.close()

    async def flush(self) -> None:
        await self._counters.flush()

    async def snapshot(self) -> dict[str, object]:
        """Cluster-wide totals by group, deployment and outcome (this worker's unflushed counts included)."""
        scope = "cluster"
        try:
            counts = Counter(await self._store.hgetall(KEY))
        except StateUnavailable:
            counts, scope = Counter(), "this worker only (shared state unreachable)"
        counts.update(self._counters.pending(KEY))
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
