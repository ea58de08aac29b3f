"""Quota reservations against both StateStores: reserving, refusing, settling, concurrency.

The Redis half uses the real server on 127.0.0.1:6379 under a fresh key prefix per test (it fails,
never skips, when Redis is down). Counting tests use hour/day windows so that no window rolls over
in the middle of a test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from routeiq.api.errors import to_api_error
from routeiq.errors import QuotaExceeded
from routeiq.governance.identity import MASTER, Identity
from routeiq.governance.limits import Limit, QuotaSettings
from routeiq.governance.quota import AppliedLimit, Estimate, Quotas, Usage, usage_of
from routeiq.state.base import StateStore, Window
from tests.support.redis_store import state_store


def limit(metric: str, window: str, amount: float) -> Limit:
    return Limit.model_validate({"metric": metric, "window": window, "limit": amount})


def key_identity(*limits: Limit, team: str | None = None, user: str | None = None) -> Identity:
    return Identity("virtual_key", key_id="k1", team=team, user=user, limits=limits)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    async with state_store(request.param, "test-quota") as opened:
        yield opened


def quotas_on(store: StateStore, **settings: object) -> Quotas:
    return Quotas(store, QuotaSettings.model_validate(settings))


async def count(store: StateStore, applied: AppliedLimit, at: float) -> int:
    return await store.window_get(applied.counter, applied.window, now=at)


# --- reserving ---------------------------------------------------------------------------------


async def test_requests_limit_lets_exactly_n_through(store: StateStore) -> None:
    quotas = quotas_on(store)
    limits = quotas.limits_for(key_identity(limit("requests", "hour", 3)), None)
    tickets = [await quotas.reserve(limits, Estimate(1, 1)) for _ in range(3)]
    assert [quotas.headers(t)["x-ratelimit-remaining-requests"] for t in tickets] == ["2", "1", "0"]
    assert quotas.headers(tickets[0])["x-ratelimit-limit-requests"] == "3"
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(limits, Estimate(1, 1))
    error = to_api_error(refused.value)
    assert error.status == 429 and error.code == "requests_limit_exceeded"
    assert error.error_type == "rate_limit_error"
    assert "key 'k1': 3 requests per hour" in error.message
    assert error.headers["x-ratelimit-limit-requests"] == "3"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(error.headers["retry-after"]) <= 120
    assert 1 <= int(error.headers["retry-after-ms"]) <= 120_000
    assert "x-should-retry" not in error.headers  # waiting helps


async def test_reservation_is_all_or_nothing(store: StateStore) -> None:
    quotas = quotas_on(store, teams={"ml": [{"metric": "requests", "window": "hour", "limit": 1}]})
    identity = key_identity(limit("requests", "hour", 10), team="ml")
    limits = quotas.limits_for(identity, None)
    await quotas.reserve(limits, Estimate(0, 0))
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(limits, Estimate(0, 0))
    assert "team 'ml'" in to_api_error(refused.value).message
    now = time.time()
    key_limit = next(a for a in limits if a.scope == "key")
    assert await count(store, key_limit, now) == 1  # the refused call left the key's counter alone


async def test_concurrent_reservations_never_overshoot(store: StateStore) -> None:
    quotas = quotas_on(store, groups={"auto": [{"metric": "requests", "window": "day", "limit": 7}]})
    limits = quotas.limits_for(MASTER, "auto")
    outcomes = await asyncio.gather(
        *(quotas.reserve(limits, Estimate(1, 1)) for _ in range(30)), return_exceptions=True
    )
    assert sum(1 for outcome in outcomes if not isinstance(outcome, BaseException)) == 7
    assert all(isinstance(o, QuotaExceeded) for o in outcomes if isinstance(o, BaseException))


async def test_tokens_reserve_the_estimate_and_settle_to_real_usage(store: StateStore) -> None:
    quotas = quotas_on(store)
    identity = key_identity(
        limit("input_tokens", "hour", 1000),
        limit("output_tokens", "hour", 1000),
        limit("total_tokens", "day", 5000),
    )
    limits = {a.limit.metric: a for a in quotas.limits_for(identity, None)}
    ticket = await quotas.reserve(list(limits.values()), Estimate(100, 400))
    at = ticket.reserved_at
    assert await count(store, limits["input_tokens"], at) == 100
    assert await count(store, limits["output_tokens"], at) == 400
    assert await count(store, limits["total_tokens"], at) == 500
    assert quotas.headers(ticket)["x-ratelimit-remaining-tokens"] == "600"  # the tightest: output, 1000-400

    quotas.settle(ticket, usage_of(True, {"prompt_tokens": 90, "completion_tokens": 25}, None))
    await quotas.flush()
    assert await count(store, limits["input_tokens"], at) == 90
    assert await count(store, limits["output_tokens"], at) == 25
    assert await count(store, limits["total_tokens"], at) == 115


async def test_failed_call_gives_tokens_back_but_counts_the_request(store: StateStore) -> None:
    quotas = quotas_on(store)
    identity = key_identity(
        limit("requests", "hour", 10), limit("total_tokens", "hour", 1000), limit("spend_usd", "day", 1)
    )
    limits = {a.limit.metric: a for a in quotas.limits_for(identity, None)}
    ticket = await quotas.reserve(list(limits.values()), Estimate(50, 50))
    quotas.settle(ticket, Usage(served=False))
    await quotas.flush()
    at = ticket.reserved_at
    assert await count(store, limits["requests"], at) == 1
    assert await count(store, limits["total_tokens"], at) == 0
    assert await count(store, limits["spend_usd"], at) == 0


async def test_served_without_usage_keeps_the_estimate(store: StateStore) -> None:
    quotas = quotas_on(store)
    limits = quotas.limits_for(key_identity(limit("total_tokens", "hour", 1000)), None)
    ticket = await quotas.reserve(limits, Estimate(30, 70))
    quotas.settle(ticket, usage_of(True, None, None))
    await quotas.flush()
    assert await count(store, limits[0], ticket.reserved_at) == 100


async def test_a_request_bigger_than_the_limit_is_told_not_to_retry(store: StateStore) -> None:
    quotas = quotas_on(store)
    limits = quotas.limits_for(key_identity(limit("output_tokens", "hour", 500)), None)
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(limits, Estimate(10, 1024))
    assert to_api_error(refused.value).code == "tokens_limit_exceeded"
    assert to_api_error(refused.value).headers["x-should-retry"] == "false"
    assert "lower max_tokens" in to_api_error(refused.value).message
    assert to_api_error(refused.value).headers["x-ratelimit-remaining-tokens"] == "500"


async def test_spent_budget_refuses_and_says_retrying_will_not_help(store: StateStore) -> None:
    quotas = quotas_on(store)
    identity = key_identity(limit("spend_usd", "month", 0.01))
    limits = quotas.limits_for(identity, None)
    first = await quotas.reserve(limits, Estimate(10, 10))
    assert quotas.headers(first)["x-ratelimit-limit-budget"] == "0.01"
    quotas.settle(first, usage_of(True, {"prompt_tokens": 10, "completion_tokens": 10}, 0.004))
    await quotas.flush()
    assert await count(store, limits[0], first.reserved_at) == 4000  # micro-dollars

    second = await quotas.reserve(limits, Estimate(10, 10))
    assert quotas.headers(second)["x-ratelimit-remaining-budget"] == "0.005999"  # 1 µ$ reserved
    quotas.settle(second, usage_of(True, {"prompt_tokens": 10}, 0.007))  # overshoots: 0.011

    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(limits, Estimate(10, 10))
    error = to_api_error(refused.value)
    assert error.status == 429 and error.code == "budget_exceeded"
    assert error.error_type == "insufficient_quota"
    assert error.headers["x-should-retry"] == "false"
    assert error.headers["x-ratelimit-remaining-budget"] == "0"
    assert "$0.01 per month" in error.message


async def test_concurrent_calls_cannot_overspend_a_budget(store: StateStore) -> None:
    """The budget reserves each call's estimated cost: $0.10 at $0.02 a call lets 5 of 100 through."""
    quotas = quotas_on(store)
    limits = quotas.limits_for(key_identity(limit("spend_usd", "day", 0.10)), None)
    estimate = Estimate(0, 100, 0.02)  # 0.02 is 20000.000000000004 micro-dollars in floating point
    outcomes = await asyncio.gather(
        *(quotas.reserve(limits, estimate) for _ in range(100)), return_exceptions=True
    )
    tickets = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    refusals = [to_api_error(outcome) for outcome in outcomes if isinstance(outcome, QuotaExceeded)]
    assert len(tickets) == 5 and len(refusals) == 95
    assert {error.code for error in refusals} == {"budget_exceeded"}
    for t in tickets:
        quotas.settle(t, usage_of(True, {"prompt_tokens": 0, "completion_tokens": 90}, 0.018))
    await quotas.flush()
    assert await count(store, limits[0], tickets[0].reserved_at) == 5 * 18_000  # settled to real cost
    again = await quotas.reserve(limits, Estimate(0, 10, 0.002))  # what is left still serves
    assert quotas.headers(again)["x-ratelimit-remaining-budget"] == "0.008"


async def test_a_call_dearer_than_the_whole_budget_is_told_in_dollars(store: StateStore) -> None:
    quotas = quotas_on(store)
    limits = quotas.limits_for(key_identity(limit("spend_usd", "day", 0.05)), None)
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(limits, Estimate(10, 1024, 0.2))
    assert to_api_error(refused.value).code == "budget_exceeded"
    assert "needs about $0.2 of the limit" in to_api_error(refused.value).message
    assert to_api_error(refused.value).headers["x-should-retry"] == "false"


async def test_served_without_usage_keeps_the_estimated_spend(store: StateStore) -> None:
    quotas = quotas_on(store)
    limits = quotas.limits_for(key_identity(limit("spend_usd", "day", 1)), None)
    ticket = await quotas.reserve(limits, Estimate(10, 100, 0.0125))
    quotas.settle(ticket, usage_of(True, None, None))
    await quotas.flush()
    assert await count(store, limits[0], ticket.reserved_at) == 12_500


async def test_settling_uses_the_reservations_window_and_skips_ended_ones(store: StateStore) -> None:
    quotas = quotas_on(store)
    limits = quotas.limits_for(key_identity(limit("total_tokens", "minute", 10_000)), None)
    # Reserved two minutes ago: that window has ended, so settling leaves it alone.
    old = await quotas.reserve(limits, Estimate(100, 100), now=time.time() - 120)
    quotas.settle(old, Usage(served=False))
    await quotas.flush()
    assert await count(store, limits[0], old.reserved_at) == 200
    assert await store.window_get(limits[0].counter, Window.MINUTE) == 0  # the current one untouched


async def test_units_given_back_stay_in_the_process_until_the_flush_or_close(store: StateStore) -> None:
    quotas = quotas_on(store)
    limits = quotas.limits_for(key_identity(limit("total_tokens", "day", 10_000)), None)
    ticket = await quotas.reserve(limits, Estimate(100, 100))
    quotas.settle(ticket, usage_of(True, {"prompt_tokens": 20, "completion_tokens": 30}, None))
    assert await count(store, limits[0], ticket.reserved_at) == 200  # not handed back yet
    # The next reservation of that counter hands the spare back in the same step: it counts exactly.
    second = await quotas.reserve(limits, Estimate(5000, 4950))
    assert await count(store, limits[0], ticket.reserved_at) == 50 + 9950
    quotas.settle(second, Usage(served=False))
    await quotas.close()  # hands back what it still holds
    assert await count(store, limits[0], ticket.reserved_at) == 50


# --- leases: most calls cost no round trip, and limits stay exact ---------------------------------


class CountingStore:
    """The store, counting the reservations that reached it."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.reserves = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def reserve(self, reservations: object, now: float | None = None) -> object:
        self.reserves += 1
        return await self.store.reserve(reservations, now=now)  # type: ignore[arg-type]


async def test_with_plenty_of_room_most_calls_are_served_from_a_lease(store: StateStore) -> None:
    counting = CountingStore(store)
    quotas = Quotas(counting, QuotaSettings())  # type: ignore[arg-type]
    identity = key_identity(
        limit("requests", "hour", 100_000),
        limit("total_tokens", "hour", 10_000_000),
        limit("spend_usd", "day", 100),
    )
    limits = quotas.limits_for(identity, None)
    tickets = [await quotas.reserve(limits, Estimate(10, 90, 0.0001)) for _ in range(200)]
    assert counting.reserves <= 10, counting.reserves
    # The headers count every call as the shared counter would, lease or not.
    assert [quotas.headers(t)["x-ratelimit-remaining-requests"] for t in tickets[:3]] == [
        "99999",
        "99998",
        "99997",
    ]
    assert quotas.headers(tickets[-1])["x-ratelimit-remaining-requests"] == str(100_000 - 200)
    for ticket in tickets:
        quotas.settle(ticket, usage_of(True, {"prompt_tokens": 10, "completion_tokens": 40}, 0.00005))
    await quotas.flush()
    by_metric = {applied.limit.metric: applied for applied in limits}
    at = tickets[0].reserved_at
    assert await count(store, by_metric["requests"], at) == 200
    assert await count(store, by_metric["total_tokens"], at) == 200 * 50
    assert await count(store, by_metric["spend_usd"], at) == 200 * 50  # micro-dollars


async def test_concurrent_calls_after_a_flush_share_one_refill_of_the_lease(store: StateStore) -> None:
    """A flush hands the lease back; the 30 calls then in flight together wait for one call's new
    lease instead of each going to the shared store."""
    counting = CountingStore(store)
    quotas = Quotas(counting, QuotaSettings())  # type: ignore[arg-type]
    identity = key_identity(limit("requests", "hour", 100_000), limit("total_tokens", "hour", 10_000_000))
    limits = quotas.limits_for(identity, None)
    for _ in range(3):
        await quotas.flush()
        before = counting.reserves
        tickets = await asyncio.gather(*(quotas.reserve(limits, Estimate(10, 90)) for _ in range(30)))
        assert counting.reserves - before == 1
    await quotas.flush()
    assert await count(store, limits[0], tickets[0].reserved_at) == 90
    remaining = sorted(int(quotas.headers(t)["x-ratelimit-remaining-requests"]) for t in tickets)
    assert remaining == list(range(100_000 - 90, 100_000 - 60))


async def test_a_refused_refill_lets_the_waiting_calls_try_for_themselves(store: StateStore) -> None:
    """Near the limit no lease is granted: calls that waited for a refill go to the store
    themselves, and exactly as many pass as the limit allows."""
    quotas = quotas_on(store)
    limits = quotas.limits_for(key_identity(limit("requests", "hour", 5)), None)
    outcomes = await asyncio.gather(
        *(quotas.reserve(limits, Estimate(1, 1)) for _ in range(12)), return_exceptions=True
    )
    assert sum(1 for outcome in outcomes if not isinstance(outcome, BaseException)) == 5
    assert all(
        isinstance(outcome, QuotaExceeded) for outcome in outcomes if isinstance(outcome, BaseException)
    )


async def test_near_a_limit_no_lease_is_granted_so_n_allowed_is_exactly_n(store: StateStore) -> None:
    """Four processes share a 20-request limit; 100 calls spread unevenly over them: exactly 20 pass."""
    processes = [quotas_on(store) for _ in range(4)]
    limits = processes[0].limits_for(key_identity(limit("requests", "hour", 20)), None)
    shares = [70, 20, 8, 2]
    calls = [
        quotas.reserve(limits, Estimate(1, 1))
        for quotas, share in zip(processes, shares, strict=True)
        for _ in range(share)
    ]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(1 for outcome in outcomes if not isinstance(outcome, BaseException)) == 20
    assert all(
        isinstance(outcome, QuotaExceeded) for outcome in outcomes if isinstance(outcome, BaseException)
    )


async def test_the_counts_a_lease_reports_stay_exact_across_a_flush(store: StateStore) -> None:
    quotas = quotas_on(store)
    limits = quotas.limits_for(key_identity(limit("total_tokens", "day", 100_000)), None)
    first = await quotas.reserve(limits, Estimate(2, 500))  # leases room for later calls
    assert quotas.headers(first)["x-ratelimit-remaining-tokens"] == str(100_000 - 502)
    quotas.settle(first, usage_of(True, {"prompt_tokens": 1, "completion_tokens": 9}, None))
    await quotas.flush()  # the lease and the 492 given back go to the shared counter
    assert await count(store, limits[0], first.reserved_at) == 10
    second = await quotas.reserve(limits, Estimate(2, 100))
    assert quotas.headers(second)["x-ratelimit-remaining-tokens"] == str(100_000 - 10 - 102)
    third = await quotas.reserve(limits, Estimate(2, 100))  # from the new lease
    assert quotas.headers(third)["x-ratelimit-remaining-tokens"] == str(100_000 - 10 - 204)
