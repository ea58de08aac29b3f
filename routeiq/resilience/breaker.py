"""Per-deployment circuit breakers whose state every worker and replica shares.

closed → open when a deployment fails ``consecutive_failures`` times in a row, or when its failure
share in the current minute reaches ``failure_rate`` over at least ``min_requests`` calls. After
``open_seconds`` it is half-open: one probe request (one across the whole cluster) may try it; a
success closes the breaker, a failure opens it again.

Counters live in the StateStore; each breaker's state (open since when and why, or closed) is the
live change ``breaker.<deployment id>``, so every worker and replica follows a transition at once
and catches up on missed ones. Each worker keeps a local view, so the request path reads memory,
not Redis. Successful calls are counted locally and flushed in batches: a healthy deployment costs no
Redis round trip per request. With Redis away a transition still applies to the worker that saw it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from routeiq.periodic import every, stop
from routeiq.routing.deployments import Deployment
from routeiq.settings import CircuitBreakerSettings
from routeiq.state.base import StateStore
from routeiq.state.changes import Change, LiveChanges

logger = logging.getLogger("routeiq.breaker")

SUBJECT = "breaker."  # + the deployment id
CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}  # routeiq_circuit_state{deployment}
FLUSH_SECONDS = 1.0
MINUTE = 60


@dataclass(slots=True)
class _View:
    opened_at: float | None = None  # None: closed
    reason: str = ""
    consecutive: int = 0  # as last seen by this worker; only used to skip needless resets
    pending_successes: int = 0


class CircuitBreakers:
    def __init__(
        self,
        store: StateStore,
        changes: LiveChanges,
        settings: CircuitBreakerSettings,
        deployment_ids: Sequence[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._changes = changes
        self._settings = settings
        self._clock = clock
        self._views = {deployment_id: _View() for deployment_id in deployment_ids}
        self._tasks: list[asyncio.Task[None]] = []
        self.on_change: Callable[[str, str], None] | None = None  # (deployment id, state), for metrics
        for deployment_id in deployment_ids:
            changes.watch(SUBJECT + deployment_id, self._follow)

    async def start(self) -> None:
        self._tasks = [every(FLUSH_SECONDS, self.flush, "breaker flush")]

    async def close(self) -> None:
        await stop(self._tasks)
        with contextlib.suppress(Exception):
            await self.flush()

    # --- reading -------------------------------------------------------------------------------

    def state(self, deployment_id: str) -> str:
        view = self._views.get(deployment_id)
        if view is None or view.opened_at is None:
            return CLOSED
        return HALF_OPEN if self._clock() >= view.opened_at + self._settings.open_seconds else OPEN

    def states(self) -> dict[str, dict[str, Any]]:
        return {
            deployment_id: {
                "state": self.state(deployment_id),
                "opened_at": view.opened_at,
                "reason": view.reason,
            }
            for deployment_id, view in self._views.items()
        }

    def seconds_until_probe(self, deployment_ids: Sequence[str]) -> float:
        """How long until the first of these open breakers lets a probe through."""
        now = self._clock()
        waits = [
            view.opened_at + self._settings.open_seconds - now
            for deployment_id in deployment_ids
            if (view := self._views.get(deployment_id)) is not None and view.opened_at is not None
        ]
        return max(min(waits), 1.0) if waits else 1.0

    async def admit(self, candidates: Sequence[Deployment]) -> list[Deployment]:
        """The candidates a request may use: closed breakers, plus a half-open one if this request
        wins its probe."""
        if not self._settings.enabled:
            return list(candidates)
        admitted = []
        for deployment in candidates:
            state = self.state(deployment.id)
            if state == CLOSED or (state == HALF_OPEN and await self._claim_probe(deployment.id)):
                admitted.append(deployment)
        return admitted

    async def _claim_probe(self, deployment_id: str) -> bool:
        ttl = self._settings.open_seconds
        return await self._store.set_record_if_absent(
            f"breaker:{deployment_id}:probe", {"at": self._clock()}, ttl
        )

    # --- recording -----------------------------------------------------------------------------

    async def record_success(self, deployment_id: str) -> None:
        view = self._views.get(deployment_id)
        if view is None or not self._settings.enabled:
            return
        view.pending_successes += 1
        if view.opened_at is not None:  # the half-open probe came back well
            await self._close(deployment_id)
        elif view.consecutive:
            view.consecutive = 0
            await self._store.delete(f"breaker:{deployment_id}:consecutive")

    async def record_failure(self, deployment_id: str, reason: str) -> None:
        view = self._views.get(deployment_id)
        if view is None or not self._settings.enabled:
            return
        if view.opened_at is not None:  # a failed probe: open again for another cool-off
            await self._open(deployment_id, f"half-open probe failed: {reason}")
            return
        settings = self._settings
        view.consecutive = await self._store.incr(f"breaker:{deployment_id}:consecutive", 1, ttl_seconds=3600)
        successes, view.pending_successes = view.pending_successes, 0
        counts = await self._store.hincr(
            self._minute_key(deployment_id), {"total": successes + 1, "failures": 1}, ttl_seconds=2 * MINUTE
        )
        if view.consecutive >= settings.consecutive_failures:
            await self._open(deployment_id, f"{view.consecutive} consecutive failures; last: {reason}")
        elif (
            counts["total"] >= settings.min_requests
            and counts["failures"] / counts["total"] >= settings.failure_rate
        ):
            share = counts["failures"] / counts["total"]
            await self._open(deployment_id, f"{share:.0%} of {counts['total']} calls failed this minute")

    async def flush(self) -> None:
        """Add the locally counted successes to the shared minute counters."""
        for deployment_id, view in self._views.items():
            if view.pending_successes:
                successes, view.pending_successes = view.pending_successes, 0
                await self._store.hincr(
                    self._minute_key(deployment_id), {"total": successes}, ttl_seconds=2 * MINUTE
                )

    def _minute_key(self, deployment_id: str) -> str:
        return f"breaker:{deployment_id}:minute:{int(self._clock() // MINUTE)}"

    # --- transitions ---------------------------------------------------------------------------

    async def _open(self, deployment_id: str, reason: str) -> None:
        # Seen here at once: requests on this worker must not wait for the shared state's answer.
        opened_at = self._clock()
        self._apply(deployment_id, opened_at, reason)
        await self._store.delete(f"breaker:{deployment_id}:probe")
        logger.warning("circuit opened for deployment %s: %s", deployment_id, reason)
        await self._changes.publish(
            SUBJECT + deployment_id, {"opened_at": opened_at, "reason": reason}, local_if_unavailable=True
        )

    async def _close(self, deployment_id: str) -> None:
        self._apply(deployment_id, None, "")
        for suffix in (":probe", ":consecutive"):
            await self._store.delete(f"breaker:{deployment_id}{suffix}")
        logger.info("circuit closed for deployment %s", deployment_id)
        await self._changes.publish(
            SUBJECT + deployment_id, {"opened_at": None, "reason": ""}, local_if_unavailable=True
        )

    def _apply(self, deployment_id: str, opened_at: float | None, reason: str) -> None:
        view = self._views.get(deployment_id)
        if view is None:
            return
        changed = view.opened_at != opened_at
        view.opened_at, view.reason = opened_at, reason
        if opened_at is None:
            view.consecutive = 0
        if changed and self.on_change is not None:
            self.on_change(deployment_id, OPEN if opened_at is not None else CLOSED)

    def _follow(self, change: Change) -> None:
        state = change.value or {}  # nothing shared: closed
        opened_at = state.get("opened_at")
        deployment_id = change.subject.removeprefix(SUBJECT)
        self._apply(
            deployment_id, float(opened_at) if opened_at is not None else None, state.get("reason", "")
        )
