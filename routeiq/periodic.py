"""Background chores that run every few seconds for the life of the app (flushes, resyncs)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("routeiq")


def every(seconds: float, chore: Callable[[], Awaitable[object]], what: str) -> asyncio.Task[None]:
    """Start ``chore`` every ``seconds``; a failing run is logged and the next one tries again
    (Redis may be away for a while: the chore must outlive that)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await chore()
            except Exception:
                logger.debug("%s failed; will retry", what, exc_info=True)

    return asyncio.create_task(loop(), name=what)


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
