"""Write log records (spend, decisions) off the request path, in batches, from a bounded queue.

A request hands its record to ``submit`` and moves on: it never waits for the database and never
fails because of it. When the queue is full the record is dropped and counted (logs may be lost
under overload or a database outage; requests are not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from routeiq.store.database import StoreUnavailable

logger = logging.getLogger("routeiq.store")

T = TypeVar("T")

DEFAULT_BATCH_SIZE = 500
DEFAULT_FLUSH_SECONDS = 0.5
DEFAULT_CLOSE_TIMEOUT_SECONDS = 10.0


class LogWriter(Generic[T]):
    """One background task draining a bounded ``asyncio.Queue`` through ``write_many``.

    It writes whatever is queued, then waits up to ``flush_seconds`` for more (or less, once a full
    batch of ``batch_size`` is waiting). A failed batch is logged and counted, not retried: the
    database may stay down, and retrying would only fill the queue behind it.
    """

    def __init__(
        self,
        write_many: Callable[[Sequence[T]], Awaitable[object]],
        max_size: int,
        *,
        name: str = "log",
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        on_drop: Callable[[int], None] | None = None,
        on_write_error: Callable[[int], None] | None = None,
    ) -> None:
        if max_size < 1 or batch_size < 1:
            raise ValueError("max_size and batch_size must be at least 1")
        self.name = name
        self._write_many = write_many
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize=max_size)
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._on_drop = on_drop
        self._on_write_error = on_write_error
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # records refused because the queue was full (or the writer closed)
        self.written = 0  # records written
        self.failed = 0  # records lost to failed writes
        self.write_errors = 0  # failed batches

    @property
    def pending(self) -> int:
        """Records queued and not yet handed to ``write_many``."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the background task (call from inside the running event loop, in the lifespan)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"routeiq-{self.name}-writer"
            )

    def submit(self, record: T) -> bool:
        """Queue ``record``; False (and counted in ``dropped``) if the queue is full or closed.
        Never blocks, never raises."""
        if self._closing:
            self._drop()
            return False
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._drop()
            return False
        if self._queue.qsize() >= self._batch_size:
            self._wakeup.set()
        return True

    async def close(self, timeout_seconds: float = DEFAULT_CLOSE_TIMEOUT_SECONDS) -> None:
        """Write everything queued (up to ``timeout_seconds``), then stop. Records left after that
        are counted as dropped."""
        self._closing = True
        self._wakeup.set()
        if self._task is None:  # never started: write the queue here
            self.start()
        assert self._task is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_seconds)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            left = self._queue.qsize()
            if left:
                logger.error("%s writer: %d records not written before shutdown", self.name, left)
                for _ in range(left):
                    self._queue.get_nowait()
                    self._drop()

    async def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch:
                await self._write(batch)
                if len(batch) == self._batch_size:
                    continue  # more may be waiting: no pause between full batches
            if self._closing and self._queue.empty():
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._flush_seconds)

    def _take_batch(self) -> list[T]:
        batch: list[T] = []
        while len(batch) < self._batch_size and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _write(self, batch: list[T]) -> None:
        try:
            await self._write_many(batch)
        except Exception as error:  # logged and counted: the writer keeps going
            self.write_errors += 1
            self.failed += len(batch)
            # Only StoreUnavailable's message is known to be free of SQL, values and URLs.
            detail = str(error) if isinstance(error, StoreUnavailable) else type(error).__name__
            logger.error("%s writer: %d records lost: %s", self.name, len(batch), detail)
            self._notify(self._on_write_error, len(batch))
        else:
            self.written += len(batch)

    def _drop(self) -> None:
        self.dropped += 1
        self._notify(self._on_drop, 1)

    def _notify(self, callback: Callable[[int], None] | None, count: int) -> None:
        if callback is not None:
            try:
                callback(count)
            except Exception:  # a metrics hook must not break the writer or the request
                logger.exception("%s writer: callback failed", self.name)
