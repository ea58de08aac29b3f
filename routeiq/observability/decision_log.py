"""The decision log: one JSON line per model request (served, failed or shed), written off the
request path. The request ledger (``ledger.py``) decides what goes in and makes sure it is once.

Events are queued in memory and written in one batch twice a second, so a busy gateway pays a
dictionary and a few microseconds per request, not a write system call. The queue is bounded: when
the sink cannot keep up, events are dropped and counted, never requests delayed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import IO, Any

import orjson

from routeiq.periodic import every, stop

FLUSH_SECONDS = 0.5
MAX_QUEUED = 50_000


class DecisionLog:
    def __init__(self, target: str) -> None:
        """``target``: ``stderr``, ``off``, or a file path to append to."""
        self.enabled = target != "off"
        self._target = target
        self._queued: list[bytes] = []
        self.dropped = 0
        self._sink: IO[bytes] | None = None
        self._task: asyncio.Task[None] | None = None

    def record(self, event: dict[str, Any]) -> None:
        if len(self._queued) >= MAX_QUEUED:
            self.dropped += 1
            return
        self._queued.append(orjson.dumps(event) + b"\n")

    def start(self) -> None:
        if not self.enabled:
            return
        if self._target == "stderr":
            self._sink = sys.stderr.buffer
        else:  # open for the app's whole life; close() closes it
            self._sink = Path(self._target).open("ab")  # noqa: SIM115
        self._task = every(FLUSH_SECONDS, self.flush, "decision log flush")

    async def flush(self) -> None:
        if not self._queued or self._sink is None:
            return
        batch, self._queued = self._queued, []
        self._sink.write(b"".join(batch))
        self._sink.flush()

    async def close(self) -> None:
        if self._task is not None:
            await stop([self._task])
        await self.flush()
        if self._sink is not None and self._sink is not sys.stderr.buffer:
            self._sink.close()
