"""Losing Redis mid-traffic: the gateway keeps serving on per-process state, says it is degraded
(readiness, metrics), and goes back to the shared state by itself when Redis returns."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import redis

from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream
from tests.support.tcp_proxy import TcpProxy

CHAT = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
ADMIN = {"authorization": "Bearer sk-admin"}


def wait_for(predicate, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


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
            assert wait_for(lambda: metric(gateway, "routeiq_state_fallbacks_total") > 0)
            assert metric(gateway, "routeiq_state_degraded") == 1

            proxy.restore()
            assert wait_for(lambda: httpx.get(f"{gateway.url}/_health/ready").json()["status"] == "ready")
            assert wait_for(lambda: metric(gateway, "routeiq_state_degraded") == 0)
            # Shared state is back, and counts held during the outage reached it: each request once.
            assert httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT).status_code == 200
            shared = redis.Redis.from_url("redis://127.0.0.1:6379/3")
            assert wait_for(
                lambda: sum(int(v) for v in shared.hgetall("routeiq:stats:requests").values()) == 12
            )
            stats = httpx.get(f"{gateway.url}/admin/stats", headers=ADMIN).json()
            assert stats["scope"] == "cluster" and stats["total"] == 12
