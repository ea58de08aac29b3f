"""Graceful drain on SIGTERM: stop admitting, let in-flight requests and streams finish, then exit.

The server (uvicorn, or gunicorn's uvicorn worker) has its own SIGTERM handler that stops at once.
This puts RouteIQ's in front of it: readiness turns 503 and new requests get 503 ``draining`` while
the listener stays open for the load balancer to notice; once nothing is in flight (or
``drain_timeout_seconds`` ran out) the server's own handler runs and shuts down as usual.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType
from typing import Any

from routeiq.resilience.traffic import TrafficGate

logger = logging.getLogger("routeiq.drain")


class DrainOnSignal:
    def __init__(self, gate: TrafficGate, timeout_seconds: float) -> None:
        self._gate = gate
        self._timeout_seconds = timeout_seconds
        self._previous: Any = None
        self._task: asyncio.Task[None] | None = None

    def install(self) -> bool:
        """Take over SIGTERM (main thread only; an app run any other way is left alone)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        loop = asyncio.get_running_loop()
        self._previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self._begin, signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)
        return True

    def _begin(self, signum: int, frame: FrameType | None) -> None:
        if self._task is not None:
            return
        self._gate.start_draining()
        logger.warning(
            "SIGTERM: draining %d in-flight request(s), up to %.0fs",
            self._gate.in_flight,
            self._timeout_seconds,
        )
        self._task = asyncio.get_running_loop().create_task(self._finish(signum, frame))

    async def _finish(self, signum: int, frame: FrameType | None) -> None:
        if not await self._gate.wait_idle(self._timeout_seconds):
            logger.warning("drain timeout: %d request(s) still in flight are cut off", self._gate.in_flight)
        else:
            logger.info("drained: shutting down")
        if callable(self._previous):
            self._previous(signum, frame)
        else:  # no Python-level handler to hand over to: the default action is to terminate
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)
