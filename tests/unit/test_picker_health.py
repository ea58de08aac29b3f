"""The healthy-deployment answer is fetched once for a burst of requests, not once per request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litellm.types.router import RouterRateLimitError

from routeiq.routing.picker import Picker
from routeiq.routing.strategy import NoHealthyDeployment
from tests.unit.test_breaker import deployments


class SlowRouter:
    """Answers ``select(kind="healthy")`` after a round trip's pause, counting the calls."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    async def select(self, group: str, kwargs: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise RouterRateLimitError(
                model=group, cooldown_time=7, enable_pre_call_checks=False, cooldown_list=[]
            )
        return [{"model_info": {"id": deployment.id}} for deployment in deployments()]


def picker(router: SlowRouter) -> Picker:
    return Picker(router, None, None)  # type: ignore[arg-type]  # only the health cache is used


async def test_a_burst_shares_one_fetch_and_a_failure_recorded_forces_a_new_one() -> None:
    router = SlowRouter()
    health = picker(router)
    answers = await asyncio.gather(*(health.healthy_ids("g") for _ in range(50)))
    assert router.calls == 1 and all(answer == {"a", "b"} for answer in answers)
    await health.healthy_ids("g")
    assert router.calls == 1  # still fresh
    health.forget_health()
    await health.healthy_ids("g")
    assert router.calls == 2


async def test_every_deployment_cooling_down_is_shared_too_and_a_cancelled_caller_spoils_nothing() -> None:
    router = SlowRouter(fail=True)
    health = picker(router)
    first = asyncio.ensure_future(health._healthy_ids("g"))
    await asyncio.sleep(0)
    first.cancel()  # this caller goes away; the others still get the answer
    outcomes = await asyncio.gather(*(health._healthy_ids("g") for _ in range(10)), return_exceptions=True)
    assert router.calls == 1
    assert all(isinstance(outcome, NoHealthyDeployment) for outcome in outcomes)
    assert outcomes[0].retry_after == pytest.approx(7)  # type: ignore[union-attr]
