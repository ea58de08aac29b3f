"""Losing Redis mid-traffic: the gateway keeps serving on per-process state, says it is degraded
(readiness, metrics), and goes back to the shared state by itself when Redis returns. Dropped
connections (``CLIENT KILL``) and a restart are not outages at all; a frozen Redis costs the
configured timeout. Those tests run a ``redis-server`` of their own, never touching the shared one."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream
from tests.support.redis_store import RedisServer
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.usefixtures("clear_of_hour_rollover")  # counts calls in hour windows

CHAT = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
ADMIN = {"authorization": "Bearer sk-admin"}


RECOVERY_SECONDS = 15.0  # reconnecting backs off: generous on a slow, shared machine


def metric(gateway: Gateway, name: str) -> float:
    for line in httpx.get(f"{gateway.url}/metrics").text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_gateway_survives_losing_redis_and_recovers(tmp_path: Path) -> None:
    redis.Redis.from_url("redis://127.0.0.1:6379/3").flushdb()
    with MockUpstream() as upstream, TcpProxy("127.0.0.1", 6379) as proxy:
        env = {"ROUTEIQ_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/3", "ROUTEIQ_ADMIN_KEYS": "sk-admin"}
        config = {"model_list": [deployment("auto", "mock-a", upstream.base_url, id="a")]}
        with Gateway(config, tmp_path, env) as gateway:
            assert httpx.get(f"{gateway.url}/_health/ready").json()["checks"]["state"] == "ok"
            assert httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT).status_code == 200

            proxy.cut()
            for _ in range(10):  # serving goes on
                assert (
                    httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10).status_code == 200
                )
            ready = httpx.get(f"{gateway.url}/_health/ready")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
            assert ready.json()["checks"]["state"].startswith("degraded")
            eventually_sync(
                lambda: metric(gateway, "routeiq_state_fallbacks_total") > 0, timeout=RECOVERY_SECONDS
            )
            assert metric(gateway, "routeiq_state_degraded") == 1

            proxy.restore()
            eventually_sync(
                lambda: httpx.get(f"{gateway.url}/_health/ready").json()["status"] == "ready",
                timeout=RECOVERY_SECONDS,
            )
            eventually_sync(lambda: metric(gateway, "routeiq_state_degraded") == 0, timeout=RECOVERY_SECONDS)
            # Shared state is back, and counts held during the outage reached it: each request once.
            assert httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT).status_code == 200
            shared = redis.Redis.from_url("redis://127.0.0.1:6379/3")

            def twelve_counted() -> None:
                counts = {k.decode(): int(v) for k, v in shared.hgetall("routeiq:stats:requests").items()}
                assert sum(counts.values()) == 12, counts

            eventually_sync(twelve_counted, timeout=RECOVERY_SECONDS)
            stats = httpx.get(f"{gateway.url}/admin/stats", headers=ADMIN).json()
            assert stats["scope"] == "cluster" and stats["total"] == 12


# --- a Redis of the test's own: dropped connections, restarts, a frozen server ---------------------

LIMITED = {"model": "limited", "messages": [{"role": "user", "content": "hello"}]}
MASTER = "sk-redis-master"
LIMIT = 20


def limited_config(api_base: str, quotas_mode: str = "open") -> dict[str, object]:
    return {
        "model_list": [
            deployment("auto", "mock-a", api_base, id="a"),
            deployment("limited", "mock-limited", api_base, id="limited"),
        ],
        "routeiq": {
            "quotas": {"groups": {"limited": [{"metric": "requests", "window": "hour", "limit": LIMIT}]}},
            "state_failure_mode": {"quotas": quotas_mode},
        },
    }


def burst(gateway: Gateway, body: dict[str, object], count: int) -> list[int]:
    def one(_: int) -> int:
        headers = {"authorization": f"Bearer {MASTER}"}
        return httpx.post(
            f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def fallbacks_total(gateway: Gateway) -> float:
    total = 0.0
    for line in httpx.get(f"{gateway.url}/metrics").text.splitlines():
        if line.startswith("routeiq_state_fallbacks_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_killed_connections_and_a_restart_keep_limits_shared(tmp_path: Path) -> None:
    """After CLIENT KILL, and after a restart, a 20-request limit still lets exactly 20 of 100
    concurrent requests through two workers: no connection error sends a worker to its own counter."""
    with RedisServer(tmp_path) as own_redis, MockUpstream() as upstream:
        env = {"ROUTEIQ_REDIS_URL": own_redis.url, "ROUTEIQ_MASTER_KEY": MASTER}
        with Gateway(limited_config(upstream.base_url), tmp_path, env, args=("--workers", "2")) as gateway:
            gateway.wait_for_log("router built", count=2)
            assert burst(gateway, CHAT, 40) == [200] * 40  # every worker holds pooled connections now
            assert own_redis.kill_clients() >= 4

            statuses = burst(gateway, LIMITED, 100)
            assert statuses.count(200) == LIMIT and statuses.count(429) == 100 - LIMIT
            assert httpx.get(f"{gateway.url}/_health/ready").json()["checks"]["state"] == "ok"

            own_redis.restart()  # no persistence: the counts start over, every connection is gone

            # A chore (a flush) that ran while Redis was down degrades its worker until its next try
            # (quotas then fail open, as configured). What is checked here is after the restart:
            # traffic until every worker that degraded has said it is back.
            def every_worker_back() -> None:
                assert burst(gateway, CHAT, 8) == [200] * 8
                log = gateway.log()
                assert log.count("shared state is back") >= log.count("shared state unavailable (")

            eventually_sync(every_worker_back)
            statuses = burst(gateway, LIMITED, 100)
            assert statuses.count(200) == LIMIT and statuses.count(429) == 100 - LIMIT
            for _ in range(4):  # each worker, most likely: none of them served from its own state
                ready = httpx.get(f"{gateway.url}/_health/ready").json()
                assert ready["status"] == "ready" and ready["checks"]["state"] == "ok"
                assert fallbacks_total(gateway) == 0


def test_fail_closed_quotas_keep_serving_after_killed_connections(tmp_path: Path) -> None:
    """``quotas: closed`` refuses only while Redis is really away, not once per dropped connection."""
    with RedisServer(tmp_path) as own_redis, MockUpstream() as upstream:
        env = {"ROUTEIQ_REDIS_URL": own_redis.url, "ROUTEIQ_MASTER_KEY": MASTER}
        config = limited_config(upstream.base_url, quotas_mode="closed")
        with Gateway(config, tmp_path, env) as gateway:
            assert burst(gateway, CHAT, 20) == [200] * 20
            own_redis.kill_clients()
            statuses = burst(gateway, LIMITED, 60)
            assert statuses.count(200) == LIMIT and statuses.count(429) == 60 - LIMIT  # no 503


# LiteLLM's own default Redis socket timeout: a call that waits this long on a frozen Redis did not get
# RouteIQ's timeout. The bound comes from the thing tested, not from how fast this machine is.
LITELLM_DEFAULT_REDIS_TIMEOUT_SECONDS = 5.0


def test_a_frozen_redis_costs_the_configured_timeout(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as own_redis, MockUpstream() as upstream:
        env = {
            "ROUTEIQ_REDIS_URL": own_redis.url,
            "ROUTEIQ_REDIS_TIMEOUT_SECONDS": "0.2",
            "ROUTEIQ_PASSTHROUGH": "off",  # every call through LiteLLM's Router and its Redis client
        }
        config = {
            "model_list": [
                deployment("auto", "mock-a", upstream.base_url, id="a"),
                deployment("primary", "primary-fail500", upstream.base_url, id="primary-down"),
            ],
            "router_settings": {"num_retries": 0, "fallbacks": [{"primary": ["auto"]}]},
        }
        with Gateway(config, tmp_path, env) as gateway:
            assert httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=30).status_code == 200
            own_redis.freeze()
            try:
                for body in (CHAT, {**CHAT, "model": "primary"}, CHAT):  # a plain call, a fallback
                    started = time.monotonic()
                    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
                    elapsed = time.monotonic() - started
                    assert response.status_code == 200, response.text
                    assert elapsed < LITELLM_DEFAULT_REDIS_TIMEOUT_SECONDS, (body["model"], elapsed)
                ready = httpx.get(f"{gateway.url}/_health/ready", timeout=30).json()
                assert ready["status"] == "degraded" and ready["checks"]["state"].startswith("degraded")
            finally:
                own_redis.thaw()
            eventually_sync(
                lambda: httpx.get(f"{gateway.url}/_health/ready").json()["status"] == "ready",
                timeout=RECOVERY_SECONDS,
            )
