"""Build the app's state stores from settings: Redis (shared) when configured, else in-process."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from routeiq.settings import Settings
from routeiq.state.base import StateStore
from routeiq.state.changes import LiveChanges, new_instance_id
from routeiq.state.memory import MemoryStateStore
from routeiq.state.redis import RedisStateStore, create_redis_store
from routeiq.state.resilient import ResilientStateStore, StateHealth

logger = logging.getLogger("routeiq.state")


@dataclass
class StateStores:
    """One store per feature, so each follows its own fail-open/fail-closed setting, and the live-change
    hub every feature that changes at runtime goes through."""

    backend: str
    health: StateHealth
    shared: RedisStateStore | None
    local: MemoryStateStore
    by_feature: dict[str, StateStore]
    changes: LiveChanges

    def for_feature(self, feature: str) -> StateStore:
        return self.by_feature[feature]

    async def start(self) -> None:
        await self.local.start()
        if self.shared is not None:
            try:
                await self.shared.start()
            except Exception as error:  # keep serving: the listener reconnects when Redis is back
                self.health.record_failure("startup", f"redis unreachable at startup: {error}")
                logger.warning("Redis unreachable at startup; serving on per-process state until it returns")

    async def wait_subscribed(self, seconds: float) -> None:
        """Return once this process's subscriptions are live (notices sent before that are lost)."""
        if self.shared is not None and not await self.shared.wait_subscribed(seconds):
            logger.warning("shared-state notices not live after %.1fs; relying on periodic resync", seconds)

    def on_reconnect(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` whenever the notice channel reconnects: whatever was announced meanwhile is lost."""
        if self.shared is not None:
            self.shared.add_reconnect_hook(hook)

    async def start_changes(self) -> None:
        """Once every live-changeable feature watches its subject: catch up, then follow."""
        await self.changes.start()
        self.on_reconnect(self.changes.resync)

    async def close(self) -> None:
        await self.changes.close()
        if self.shared is not None:
            await self.shared.close()
        await self.local.close()

    async def check(self) -> str:
        """``ok``, ``memory`` (nothing shared configured) or ``degraded: <reason>``."""
        if self.shared is None:
            return "memory"
        try:
            await self.shared.ping()
        except Exception as error:
            self.health.record_failure("health", str(error))
            return f"degraded: {self.health.reason or error}"
        self.health.record_success()
        return "ok"


def build_state_stores(settings: Settings) -> StateStores:
    health = StateHealth()
    local = MemoryStateStore()
    modes = settings.state_failure_mode.model_dump()
    # Cluster stats never fall back: their counts wait in the worker until Redis takes them, so
    # each request is still counted exactly once after an outage.
    modes["stats"] = "closed"
    instance_id = new_instance_id()
    if not (settings.redis_url or settings.redis_sentinels):
        by_memory: dict[str, StateStore] = {feature: local for feature in modes}
        return StateStores("memory", health, None, local, by_memory, LiveChanges(local, instance_id))
    shared = create_redis_store(
        settings.redis_url,
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
        cluster=settings.redis_cluster,
        key_prefix=settings.redis_key_prefix,
        timeout_seconds=settings.redis_timeout_seconds,
    )
    by_feature: dict[str, StateStore] = {
        feature: ResilientStateStore(shared, local, feature=feature, fail_open=mode == "open", health=health)
        for feature, mode in modes.items()
    }
    # A change either reaches the shared state or is refused (or, where its feature says so, applied
    # to this process alone): it never lands in a per-process fallback that would pass for shared.
    changes_store = ResilientStateStore(shared, local, feature="changes", fail_open=False, health=health)
    changes = LiveChanges(changes_store, instance_id)
    return StateStores("redis", health, shared, local, by_feature, changes)
