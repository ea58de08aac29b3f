"""The traffic gate: how many requests a worker serves at once, who waits, and draining.

At capacity a request may wait in a bounded queue for up to ``queue_timeout_ms``; past that (or
with the queue full) it is shed. While draining (after SIGTERM) nothing new is admitted and
``wait_idle`` tells when the last in-flight request, stream included, has finished.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Rejected(Exception):
    def __init__(self, reason: str) -> None:  # "overloaded" or "draining"
        super().__init__(reason)
        self.reason = reason


class TrafficGate:
    def __init__(self, max_concurrent: int, queue_timeout_ms: int, queue_max_depth: int) -> None:
        self.max_concurrent = max_concurrent
        self.queue_timeout = queue_timeout_ms / 1000
        self.queue_max_depth = queue_max_depth if queue_timeout_ms > 0 else 0
        self.in_flight = 0
        self.draining = False
        self.shed: dict[str, int] = {"overloaded": 0, "draining": 0}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def queue_depth(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        if self.draining:
            self._reject("draining")
        if self.in_flight < self.max_concurrent and not self._waiters:
            self._take()
            return
        if len(self._waiters) >= self.queue_max_depth:
            self._reject("overloaded")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.queue_timeout)
        except TimeoutError:
            if waiter.done():  # handed a slot just as the wait ran out: keep it
                return
            waiter.cancel()
            self._waiters.remove(waiter)
            self._reject("overloaded")

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the first waiter
                return
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def start_draining(self) -> None:
        self.draining = True
        for waiter in self._waiters:  # queued requests would only outlive the drain: refuse them now
            if not waiter.done():
                self.shed["draining"] += 1
                waiter.set_exception(Rejected("draining"))
        self._waiters.clear()

    async def wait_idle(self, seconds: float) -> bool:
        """True when nothing is in flight any more, False if ``seconds`` ran out first."""
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def _take(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def _reject(self, reason: str) -> None:
        self.shed[reason] += 1
        raise Rejected(reason)
