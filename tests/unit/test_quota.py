"""The quota engine without a running service: which limits apply, estimates, headers, and a dead
Redis failing closed or open. Reserving and settling against memory and Redis are in
tests/services/test_quota_reservations.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from routeiq.api.errors import to_api_error
from routeiq.errors import QuotaExceeded, QuotaUnavailable
from routeiq.governance.identity import MASTER, Identity
from routeiq.governance.limits import Limit, QuotaSettings
from routeiq.governance.metering import StreamMeter
from routeiq.governance.quota import (
    AppliedLimit,
    Estimate,
    Price,
    PriceBook,
    Quotas,
    applicable_limits,
    estimate_call,
    format_reset,
    limit_headers,
    usage_of,
)
from routeiq.state.base import StateStore
from routeiq.state.memory import MemoryStateStore
from routeiq.state.redis import create_redis_store
from routeiq.state.resilient import ResilientStateStore, StateHealth


def limit(metric: str, window: str, amount: float) -> Limit:
    return Limit.model_validate({"metric": metric, "window": window, "limit": amount})


def key_identity(*limits: Limit, team: str | None = None, user: str | None = None) -> Identity:
    return Identity("virtual_key", key_id="k1", team=team, user=user, limits=limits)


def quotas_on(store: StateStore, **settings: object) -> Quotas:
    return Quotas(store, QuotaSettings.model_validate(settings))


# --- which limits apply ------------------------------------------------------------------------


def test_limits_come_from_key_team_user_and_group() -> None:
    settings = QuotaSettings.model_validate(
        {
            "teams": {"ml": [{"metric": "requests", "window": "hour", "limit": 50}]},
            "users": {"ada": [{"metric": "total_tokens", "window": "day", "limit": 1000}]},
            "groups": {"auto": [{"metric": "requests", "window": "minute", "limit": 600}]},
        }
    )
    identity = key_identity(limit("spend_usd", "month", 5), team="ml", user="ada")
    found = {(a.scope, a.subject, a.limit.metric) for a in applicable_limits(identity, "auto", settings)}
    assert found == {
        ("key", "k1", "spend_usd"),
        ("team", "ml", "requests"),
        ("user", "ada", "total_tokens"),
        ("group", "auto", "requests"),
    }
    # Master and anonymous callers have no key, team or user: only group limits reach them.
    assert [a.scope for a in applicable_limits(MASTER, "auto", settings)] == ["group"]
    assert applicable_limits(MASTER, "other", settings) == ()


@pytest.mark.parametrize(
    "limit",
    [
        {"metric": "spend_usd", "window": "month", "limit": 1e308},
        {"metric": "spend_usd", "window": "month", "limit": float("inf")},
        {"metric": "requests", "window": "minute", "limit": float("nan")},
        {"metric": "total_tokens", "window": "day", "limit": 1e13},
    ],
)
def test_limits_beyond_a_counters_range_are_refused_wherever_they_are_written(limit: dict[str, Any]) -> None:
    """Keys (admin API) and YAML quotas share the Limit model: a 1e308 budget is an error in both."""
    with pytest.raises(ValidationError):
        Limit.model_validate(limit)
    with pytest.raises(ValidationError):
        QuotaSettings.model_validate({"teams": {"search": [limit]}})


def test_two_limits_on_one_counter_keep_the_smaller() -> None:
    identity = key_identity(
        limit("requests", "hour", 10), limit("requests", "hour", 3), limit("requests", "day", 5)
    )
    found = applicable_limits(identity, None, QuotaSettings())
    assert sorted((a.limit.window, a.cap) for a in found) == [("day", 5), ("hour", 3)]


def test_may_apply_is_false_when_nothing_is_configured_for_the_caller() -> None:
    quotas = quotas_on(
        MemoryStateStore(), teams={"ml": [{"metric": "requests", "window": "hour", "limit": 1}]}
    )
    assert not quotas.may_apply(MASTER)
    assert not quotas.may_apply(Identity("virtual_key", key_id="k1", team="other"))
    assert quotas.may_apply(Identity("virtual_key", key_id="k1", team="ml"))
    assert quotas.may_apply(key_identity(limit("requests", "hour", 1)))
    with_groups = quotas_on(
        MemoryStateStore(), groups={"auto": [{"metric": "requests", "window": "hour", "limit": 1}]}
    )
    assert with_groups.may_apply(MASTER)


# --- estimates ---------------------------------------------------------------------------------


def test_estimate_chat_uses_characters_and_max_tokens() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "x" * 40},
            {"role": "user", "content": [{"type": "text", "text": "y" * 41}, {"type": "image_url"}]},
        ],
        "max_tokens": 64,
    }
    assert estimate_call(body, "/v1/chat/completions", 1024) == Estimate(21, 64)
    assert (
        estimate_call({**body, "max_completion_tokens": 10}, "/v1/chat/completions", 1024).output_tokens == 10
    )
    assert estimate_call({"messages": [], "n": 3}, "/chat/completions", 100) == Estimate(0, 300)


def test_estimate_completions_and_embeddings() -> None:
    assert estimate_call({"prompt": ["abcd", "efgh"]}, "/v1/completions", 7) == Estimate(2, 7)
    assert estimate_call({"input": "a" * 10, "max_tokens": 5}, "/v1/embeddings", 7) == Estimate(3, 0)


def test_estimate_prices_the_tokens_at_the_given_price() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 100}
    estimate = estimate_call(body, "/v1/chat/completions", 1024, Price(0.001, 0.002))
    assert estimate == Estimate(10, 100, pytest.approx(10 * 0.001 + 100 * 0.002))
    embedding = estimate_call({"input": "a" * 8}, "/v1/embeddings", 1024, Price(0.5, 9.0))
    assert embedding.cost_usd == pytest.approx(1.0)


def test_price_book_bounds_a_group_by_its_dearest_reachable_deployment() -> None:
    groups = {
        "auto": [Price(0.001, 0.002), Price(0.003, 0.0005)],
        "backup": [Price(0.0001, 0.01)],
        "cheap": [Price(0.0, 0.0)],
    }
    book = PriceBook(groups, lambda group: ["backup"] if group == "auto" else [])
    # Each price at its highest among auto's deployments and its fallback's.
    assert book.bound("auto") == Price(0.003, 0.01)
    assert book.bound("cheap") == Price(0.0, 0.0)
    # A name that is not a group (a profile, say): nobody knows yet who serves it, so the dearest.
    assert book.bound("premium") == book.bound(None) == Price(0.003, 0.01)
    assert PriceBook({}, lambda group: []).bound("auto") == Price()


def test_quotas_estimate_uses_the_groups_price() -> None:
    book = PriceBook({"priced": [Price(0.0, 0.01)], "free": [Price()]}, lambda group: [])
    quotas = Quotas(MemoryStateStore(), QuotaSettings(default_max_tokens=50), book)
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert quotas.estimate(body, "/v1/chat/completions", "priced").cost_usd == pytest.approx(0.5)
    assert quotas.estimate(body, "/v1/chat/completions", "free").cost_usd == 0.0


async def test_fail_closed_without_redis_is_a_503() -> None:
    dead = create_redis_store("redis://127.0.0.1:1/0", timeout_seconds=0.2)
    store = ResilientStateStore(
        dead, MemoryStateStore(), feature="quotas", fail_open=False, health=StateHealth()
    )
    quotas = quotas_on(store)
    try:
        with pytest.raises(QuotaUnavailable) as refused:
            await quotas.reserve(
                quotas.limits_for(key_identity(limit("requests", "hour", 5)), None), Estimate(1, 1)
            )
    finally:
        await dead.close()
    error = to_api_error(refused.value)
    assert error.status == 503 and error.code == "quota_unavailable"
    assert error.headers["retry-after"] == "1"


async def test_fail_open_without_redis_counts_in_the_process() -> None:
    dead = create_redis_store("redis://127.0.0.1:1/0", timeout_seconds=0.2)
    store = ResilientStateStore(
        dead, MemoryStateStore(), feature="quotas", fail_open=True, health=StateHealth()
    )
    quotas = quotas_on(store)
    limits = quotas.limits_for(key_identity(limit("requests", "hour", 1)), None)
    try:
        await quotas.reserve(limits, Estimate(1, 1))
        with pytest.raises(QuotaExceeded) as refused:
            await quotas.reserve(limits, Estimate(1, 1))
    finally:
        await dead.close()
    assert to_api_error(refused.value).status == 429


# --- headers -----------------------------------------------------------------------------------


def test_format_reset_follows_openai() -> None:
    assert format_reset(0.25) == "250ms"
    assert format_reset(12) == "12s"
    assert format_reset(11.2) == "12s"
    assert format_reset(90) == "1m30s"
    assert format_reset(7205) == "2h0m5s"


def test_headers_pick_the_tightest_limit_of_each_kind() -> None:
    limits = [
        AppliedLimit("key", "k1", limit("requests", "minute", 100)),
        AppliedLimit("team", "ml", limit("requests", "hour", 10)),
        AppliedLimit("group", "auto", limit("total_tokens", "day", 1000)),
    ]
    headers = limit_headers(limits, counts=[5, 9, 10], resets=[30.0, 600.0, 3600.0])
    assert headers == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "10m0s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "990",
        "x-ratelimit-reset-tokens": "1h0m0s",
    }
    forced = limit_headers(limits, counts=[5, 9, 10], resets=[30.0, 600.0, 3600.0], force=0)
    assert forced["x-ratelimit-limit-requests"] == "100"


# --- streams cut short ---------------------------------------------------------------------------


def test_stream_meter_counts_the_streamed_text() -> None:
    meter = StreamMeter()
    meter.feed(b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n')
    meter.feed(
        b'data: {"choices":[{"delta":{"content":"Hello, "}}]}\n\n'
        b'data: {"choices":[{"delta":{"content":"a \\"quoted\\" word"}}]}\n\n'
    )
    meter.feed(b'data: {"choices":[{"text":"legacy text","index":0}]}\n\n')
    meter.feed(b'data: {"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{}"}}]}}]}\n\n')
    meter.feed(b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    assert meter.characters == len("Hello, ") + len('a \\"quoted\\" word') + len("legacy text") + 2
    usage = meter.usage({"messages": [{"role": "user", "content": "x" * 20}]})
    assert usage["prompt_tokens"] == 5
    assert usage["completion_tokens"] == -(-meter.characters // 4)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    settled = usage_of(True, usage, None)
    assert settled.input_tokens == 5 and settled.output_tokens == usage["completion_tokens"]
