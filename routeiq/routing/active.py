"""The active routing strategy, changeable at runtime and the same on every worker and replica.

A change is stored in the StateStore and announced on a channel; every worker swaps its strategy
when the notice arrives (and resyncs periodically, in case a notice was missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from routeiq.routing.picker import Picker
from routeiq.routing.registry import create_strategy, strategy_names
from routeiq.state.base import StateStore

logger = logging.getLogger("routeiq.routing")

KEY = "routing:active_strategy"
CHANNEL = "routing"
RESYNC_SECONDS = 2.0


class ActiveStrategy:
    def __init__(self, store: StateStore, picker: Picker, configured: str) -> None:
        self._store = store
        self._picker = picker
        self._configured = configured
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self._picker.strategy.name

    async def start(self) -> None:
        self._store.subscribe(CHANNEL, self._on_notice)
        with contextlib.suppress(Exception):  # Redis away at startup: the configured one serves
            await self.resync()
        self._task = asyncio.create_task(self._resync_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def set(self, name: str) -> None:
        if name not in strategy_names():
            raise ValueError(f"unknown routing strategy {name!r}; valid: {strategy_names()}")
        await self._store.set_record(KEY, {"name": name})
        self._use(name)
        await self._store.publish(CHANNEL, {"name": name})

    async def resync(self) -> None:
        record = await self._store.get_record(KEY)
        self._use(str(record["name"]) if record else self._configured)

    def _on_notice(self, message: dict[str, Any]) -> None:
        self._use(str(message.get("name", self._configured)))

    def _use(self, name: str) -> None:
        if name == self._picker.strategy.name or name not in strategy_names():
            return
        self._picker.strategy = create_strategy(name)
        logger.info("routing strategy is now %s", name)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            try:
                await self.resync()
            except Exception:
                logger.debug("strategy resync failed", exc_info=True)
