"""The traffic gate: capacity, the bounded wait queue, and draining."""

from __future__ import annotations

import asyncio

import pytest

from routeiq.resilience.traffic import Rejected, TrafficGate
from tests.support.eventually import eventually


async def test_at_capacity_without_queue_sheds_at_once() -> None:
    gate = TrafficGate(max_concurrent=1, queue_timeout_ms=0, queue_max_depth=10)
    await gate.acquire()
    with pytest.raises(Rejected) as caught:
        await gate.acquire()
    assert caught.value.reason == "overloaded" and gate.shed["overloaded"] == 1


async def test_a_waiting_request_gets_the_released_slot() -> None:
    gate = TrafficGate(max_concurrent=1, queue_timeout_ms=2000, queue_max_depth=10)
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await eventually(lambda: gate.queue_depth == 1, interval=0.001)
    assert not waiter.done()
    gate.release()
    await asyncio.wait_for(waiter, 1)
    assert gate.in_flight == 1 and gate.queue_depth == 0


async def test_queue_wait_times_out_and_full_queue_sheds() -> None:
    gate = TrafficGate(max_concurrent=1, queue_timeout_ms=50, queue_max_depth=1)
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    await eventually(lambda: gate.queue_depth == 1, interval=0.001)
    with pytest.raises(Rejected):  # the queue (depth 1) is full
        await gate.acquire()
    with pytest.raises(Rejected):  # and the one waiting gives up after 50 ms
        await first
    assert gate.shed["overloaded"] == 2 and gate.queue_depth == 0


async def test_draining_refuses_new_and_queued_work_and_reports_idle() -> None:
    gate = TrafficGate(max_concurrent=1, queue_timeout_ms=5000, queue_max_depth=5)
    await gate.acquire()
    queued = asyncio.create_task(gate.acquire())
    await eventually(lambda: gate.queue_depth == 1, interval=0.001)
    gate.start_draining()
    with pytest.raises(Rejected) as caught:
        await queued
    assert caught.value.reason == "draining"
    with pytest.raises(Rejected):
        await gate.acquire()
    assert not await gate.wait_idle(0.05)
    gate.release()
    assert await gate.wait_idle(1)
