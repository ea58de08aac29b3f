"""The active routing strategies, changeable at runtime and the same on every worker and replica.

A change (for every group, or for one) is stored in the StateStore and announced on a channel;
every worker swaps its strategy when the notice arrives, and resyncs periodically in case a notice
was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from routeiq.periodic import every, stop
from routeiq.routing.picker import Picker
from routeiq.routing.registry import StrategyDeps, create_strategy, strategy_names
from routeiq.state.base import StateStore

logger = logging.getLogger("routeiq.routing")

KEY = "routing:active_strategy"
CHANNEL = "routing"
RESYNC_SECONDS = 2.0


class ActiveStrategy:
    def __init__(
        self, store: StateStore, picker: Picker, deps: StrategyDeps, default: str, groups: dict[str, str]
    ) -> None:
        self._store = store
        self._picker = picker
        self._deps = deps
        self._configured = {"default": default, "groups": dict(groups)}
        self._task: asyncio.Task[None] | None = None
        self._apply(self._configured)

    def names(self) -> dict[str, Any]:
        return {
            "default": self._picker.default_strategy.name,
            "groups": {group: strategy.name for group, strategy in self._picker.group_strategies.items()},
        }

    async def start(self) -> None:
        self._store.subscribe(CHANNEL, self._apply)
        with contextlib.suppress(Exception):  # Redis away at startup: the configured ones serve
            await self.resync()
        self._task = every(RESYNC_SECONDS, self.resync, "strategy resync")

    async def close(self) -> None:
        if self._task is not None:
            await stop([self._task])

    async def set(self, name: str, group: str | None = None) -> None:
        """Make ``name`` the strategy of ``group`` (or the default for every group without its own)."""
        create_strategy(name, self._deps)  # refuse what cannot be built before anything changes
        wanted = self.names()
        if group is None:
            wanted["default"] = name
        else:
            wanted["groups"][group] = name
        await self._store.set_record(KEY, wanted)
        self._apply(wanted)
        await self._store.publish(CHANNEL, wanted)

    async def resync(self) -> None:
        self._apply(await self._store.get_record(KEY) or self._configured)

    def _apply(self, wanted: dict[str, Any]) -> None:
        default = wanted.get("default")
        if isinstance(default, str) and default != self._picker.default_strategy.name:
            self._picker.default_strategy = self._build(default) or self._picker.default_strategy
            logger.info("routing strategy is now %s", self._picker.default_strategy.name)
        groups = wanted.get("groups") or {}
        for group, name in groups.items():
            current = self._picker.group_strategies.get(group)
            if current is None or current.name != name:
                built = self._build(name)
                if built is not None:
                    self._picker.group_strategies[group] = built
                    logger.info("routing strategy for group %s is now %s", group, name)

    def _build(self, name: str) -> Any:
        if name not in strategy_names():
            return None
        try:
            return create_strategy(name, self._deps)
        except ValueError:  # e.g. a learned router this process has no artifact for
            logger.warning("cannot use strategy %s here", name, exc_info=True)
            return None
