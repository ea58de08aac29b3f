"""The shared wait-for-it helper: it returns as soon as the check passes, retries meanwhile, and on
timeout fails with the check's own last assertion."""

from __future__ import annotations

import time

import pytest

from tests.support.eventually import eventually, eventually_sync


async def test_returns_the_checks_value_once_it_passes() -> None:
    tries: list[int] = []

    def third_time_lucky() -> str:
        tries.append(1)
        assert len(tries) >= 3, f"only {len(tries)} tries"
        return "done"

    assert await eventually(third_time_lucky, timeout=5, interval=0.001) == "done"
    assert len(tries) == 3


async def test_awaits_an_async_check_and_counts_false_as_not_yet() -> None:
    tries: list[int] = []

    async def ready() -> bool:
        tries.append(1)
        return len(tries) == 2

    assert await eventually(ready, timeout=5, interval=0.001) is True
    assert len(tries) == 2


async def test_times_out_with_the_last_assertion() -> None:
    seen: list[int] = []

    def never() -> None:
        seen.append(len(seen))
        raise AssertionError(f"attempt {seen[-1]}")

    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"attempt \d+") as failed:
        await eventually(never, timeout=0.1, interval=0.01)
    assert time.monotonic() - started >= 0.1
    assert str(failed.value) == f"attempt {seen[-1]}" and len(seen) >= 2


async def test_an_error_other_than_an_assertion_is_not_retried() -> None:
    tries: list[int] = []

    def broken() -> None:
        tries.append(1)
        raise KeyError("bug in the check")

    with pytest.raises(KeyError):
        await eventually(broken, timeout=5)
    assert tries == [1]


def test_the_sync_variant_waits_and_fails_the_same_way() -> None:
    deadline = time.monotonic() + 0.05
    assert eventually_sync(lambda: time.monotonic() >= deadline, timeout=5, interval=0.005) is True
    with pytest.raises(AssertionError, match="still returned False"):
        eventually_sync(lambda: False, timeout=0.05, interval=0.01)
