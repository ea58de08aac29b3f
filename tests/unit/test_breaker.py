"""Circuit breaker transitions, on the in-memory store with a controlled clock."""

from __future__ import annotations

import pytest

from routeiq.resilience.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreakers
from routeiq.routing.deployments import DeploymentTable
from routeiq.settings import CircuitBreakerSettings, DeploymentConfig
from routeiq.state.changes import LiveChanges
from routeiq.state.memory import MemoryStateStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def breakers_for(clock: Clock, **overrides: object) -> tuple[CircuitBreakers, MemoryStateStore]:
    store = MemoryStateStore()
    await store.start()
    settings = CircuitBreakerSettings(
        **{
            "consecutive_failures": 3,
            "min_requests": 10,
            "failure_rate": 0.5,
            "open_seconds": 30,
            **overrides,
        }
    )
    changes = LiveChanges(store, "test")
    breakers = CircuitBreakers(store, changes, settings, ["a", "b"], clock=clock)
    await changes.start()
    return breakers, store


def deployments() -> list:  # type: ignore[type-arg]
    entries = [
        {"model_name": "g", "litellm_params": {"model": "openai/x"}, "model_info": {"id": name}}
        for name in "ab"
    ]
    table = DeploymentTable([DeploymentConfig.model_validate(entry) for entry in entries])
    return table.group("g")


async def test_consecutive_failures_open_the_breaker(clock: Clock) -> None:
    breakers, _ = await breakers_for(clock)
    for _ in range(2):
        await breakers.record_failure("a", "boom")
    assert breakers.state("a") == CLOSED
    await breakers.record_failure("a", "boom")
    assert breakers.state("a") == OPEN
    assert [d.id for d in await breakers.admit(deployments())] == ["b"]


async def test_a_success_resets_the_run_of_failures(clock: Clock) -> None:
    breakers, _ = await breakers_for(clock)
    for _ in range(2):
        await breakers.record_failure("a", "boom")
    await breakers.record_success("a")
    for _ in range(2):
        await breakers.record_failure("a", "boom")
    assert breakers.state("a") == CLOSED


async def test_failure_rate_opens_once_enough_calls_were_seen(clock: Clock) -> None:
    breakers, _ = await breakers_for(clock, consecutive_failures=100)
    for _ in range(5):
        await breakers.record_success("a")
        await breakers.record_failure("a", "boom")
    assert breakers.state("a") == OPEN  # 5 of 10 failed
    assert "50%" in breakers.states()["a"]["reason"]


async def test_half_open_lets_one_probe_through_then_closes_on_success(clock: Clock) -> None:
    breakers, _ = await breakers_for(clock)
    for _ in range(3):
        await breakers.record_failure("a", "boom")
    clock.now += 31
    assert breakers.state("a") == HALF_OPEN
    first = [d.id for d in await breakers.admit(deployments())]
    second = [d.id for d in await breakers.admit(deployments())]
    assert first == ["a", "b"] and second == ["b"]  # only one probe at a time
    await breakers.record_success("a")
    assert breakers.state("a") == CLOSED
    assert [d.id for d in await breakers.admit(deployments())] == ["a", "b"]


async def test_failed_probe_opens_again(clock: Clock) -> None:
    breakers, _ = await breakers_for(clock)
    for _ in range(3):
        await breakers.record_failure("a", "boom")
    clock.now += 31
    await breakers.admit(deployments())
    await breakers.record_failure("a", "still down")
    assert breakers.state("a") == OPEN
    assert breakers.seconds_until_probe(["a"]) == pytest.approx(30, abs=1)


async def test_other_instances_follow_through_the_store(clock: Clock) -> None:
    store = MemoryStateStore()
    await store.start()
    settings = CircuitBreakerSettings(consecutive_failures=1)
    hubs = [LiveChanges(store, "one"), LiveChanges(store, "two")]
    one, two = (CircuitBreakers(store, hub, settings, ["a"], clock=clock) for hub in hubs)
    for hub in hubs:
        await hub.start()
    await one.start()
    await two.start()
    try:
        await one.record_failure("a", "boom")
        assert two.state("a") == OPEN  # the change reached the other instance
        assert hubs[1].applied() == {"breaker.a": 1}
        clock.now += 31
        await one.admit(deployments())  # the probe
        await one.record_success("a")
        assert two.state("a") == CLOSED
    finally:
        await one.close()
        await two.close()
        for hub in hubs:
            await hub.close()
