"""Wait for something another worker, process or task does in its own time, by retrying a check
until it passes, instead of sleeping a fixed time and hoping it was long enough.

A check is a callable that returns a value (handed back to the caller) or raises AssertionError
while the awaited state is not there yet. A check that returns False also counts as not yet, so a
bare condition works too. When the timeout elapses the last AssertionError is raised again, so the
failure reads as the assertion that never came true, not as a timeout.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

TIMEOUT_SECONDS = 10.0
INTERVAL_SECONDS = 0.05


class _NotYet(AssertionError):
    """A check returned False: there is no assertion message of its own to report."""


def _judge(value: object, check: Callable[..., object]) -> None:
    if value is False:
        raise _NotYet(f"{getattr(check, '__qualname__', check)!r} still returned False")


@overload
async def eventually(
    check: Callable[[], Awaitable[T]],
    timeout: float = ...,  # noqa: ASYNC109 - see below
    interval: float = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    timeout: float = ...,  # noqa: ASYNC109 - see below
    interval: float = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    timeout: float = TIMEOUT_SECONDS,  # noqa: ASYNC109 - asyncio.timeout would lose the last failure
    interval: float = INTERVAL_SECONDS,
) -> Any:
    """Await ``check`` (sync or async) until it passes; return its value, or re-raise its last
    AssertionError after ``timeout`` seconds. It always runs at least once, and once more at the
    deadline, so a slow machine cannot turn a success into a failure by scheduling alone."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            _judge(value, check)
            return value
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def eventually_sync(
    check: Callable[[], T], timeout: float = TIMEOUT_SECONDS, interval: float = INTERVAL_SECONDS
) -> T:
    """``eventually`` for sync tests (the end-to-end ones drive a server process with blocking
    clients): the same contract, blocking the thread between tries."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            _judge(value, check)
            return value
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
