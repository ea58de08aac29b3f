"""Several workers (one port) and several replicas (two ports) sharing one real Redis.

Whichever process answers, the numbers agree: a shared counter counts each request once, a strategy
change reaches every process within a second, and a breaker opened by failures stops traffic to
that deployment from all of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

REDIS_URL = "redis://127.0.0.1:6379/2"  # a database of its own, emptied before each test
ADMIN = {"authorization": "Bearer sk-admin"}
CHAT = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}


def cluster_config(api_base: str, suffix: str) -> dict[str, Any]:
    cheap = deployment("auto", "model-cheap", api_base, id=f"cheap-{suffix}", input_cost_per_token=1e-7)
    pricey = deployment("auto", "model-pricey", api_base, id=f"pricey-{suffix}", input_cost_per_token=1e-5)
    pricey["litellm_params"]["weight"] = 9
    return {
        "model_list": [
            cheap,
            pricey,
            deployment("flaky", "flaky-bad", api_base, id=f"flaky-bad-{suffix}"),
            deployment("flaky", "flaky-good", api_base, id=f"flaky-good-{suffix}"),
        ],
        # LiteLLM's own cooldown would hide the breaker: let it tolerate failures here.
        "router_settings": {"num_retries": 1, "allowed_fails": 1000, "routing_strategy": "simple-shuffle"},
        "routeiq": {"circuit_breaker": {"consecutive_failures": 2, "open_seconds": 60}},
    }


@dataclass
class Cluster:
    urls: list[str]
    upstream: MockUpstream
    suffix: str
    processes: int
    _turn: int = 0

    def url(self) -> str:
        """Each call the next replica (with one port, the kernel spreads connections over workers)."""
        self._turn += 1
        return self.urls[self._turn % len(self.urls)]

    def post(self, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.url()}/v1/chat/completions", json=body, timeout=30)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url()}{path}", headers=ADMIN, timeout=10, **kwargs)

    def wait_applied(self, subject: str) -> int:
        """Until every process reports the version of ``subject`` the shared state holds."""

        def applied_everywhere() -> int:
            view = self.admin("GET", "/admin/changes").json()
            version = view["subjects"].get(subject)
            assert version is not None, view["subjects"]
            assert len(view["instances"]) == self.processes, view["instances"]
            assert {report["applied"].get(subject) for report in view["instances"].values()} == {version}
            return int(version)

        return eventually_sync(applied_everywhere)


@pytest.fixture(scope="module", params=["4-workers", "2-replicas"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster per shape for the module's tests (they use separate groups and counters, and the
    strategy test is the only one that changes the strategy, after the counter test has run)."""
    tmp_path = tmp_path_factory.mktemp("cluster")
    redis.Redis.from_url(REDIS_URL).flushdb()
    suffix = uuid.uuid4().hex[:8]
    env = {"ROUTEIQ_REDIS_URL": REDIS_URL, "ROUTEIQ_ADMIN_KEYS": "sk-admin"}
    with MockUpstream() as upstream, ExitStack() as stack:
        config = cluster_config(upstream.base_url, suffix)
        if request.param == "4-workers":
            gateway = stack.enter_context(Gateway(config, tmp_path, env, args=("--workers", "4")))
            gateway.wait_for_log("router built", count=4)
            urls = [gateway.url]
            processes = 4
        else:
            replicas = [stack.enter_context(Gateway(config, tmp_path, env)) for _ in range(2)]
            urls = [replica.url for replica in replicas]
            processes = 2
        yield Cluster(urls, upstream, suffix, processes)


def in_parallel(count: int, action: Callable[[], httpx.Response]) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda _: action(), range(count)))


def test_several_processes_answer(cluster: Cluster) -> None:
    # A worker that has logged "router built" may still be finishing its startup, and until it
    # accepts, the kernel hands every connection to the others: look over a few rounds.
    pids: set[int] = set()

    def reached_several() -> bool:
        answers = in_parallel(60, lambda: httpx.get(f"{cluster.url()}/_health/live"))
        pids.update(answer.json()["pid"] for answer in answers)
        return len(pids) >= 2

    eventually_sync(reached_several)


def test_shared_counter_counts_each_request_once(cluster: Cluster) -> None:
    responses = in_parallel(48, lambda: cluster.post(CHAT))
    assert all(response.status_code == 200 for response in responses)

    def counted_everywhere() -> None:  # every process flushes its counts twice a second
        for _ in range(4):  # whichever process answers, the cluster total is the same
            stats = cluster.admin("GET", "/admin/stats").json()
            assert stats["scope"] == "cluster" and stats["backend"] == "redis"
            assert stats["total"] == 48

    eventually_sync(counted_everywhere)


def test_strategy_change_reaches_every_process(cluster: Cluster) -> None:
    served = {r.headers["x-routeiq-deployment-id"] for r in in_parallel(30, lambda: cluster.post(CHAT))}
    assert f"pricey-{cluster.suffix}" in served  # simple-shuffle, weighted 9:1 towards it

    changed = cluster.admin("PUT", "/admin/strategy", json={"strategy": "cost-based-routing"})
    assert changed.status_code == 200
    assert cluster.wait_applied("routing.strategies") == changed.json()["version"]
    after = in_parallel(40, lambda: cluster.post(CHAT))
    assert {r.headers["x-routeiq-strategy"] for r in after} == {"cost-based-routing"}
    assert {r.headers["x-routeiq-deployment-id"] for r in after} == {f"cheap-{cluster.suffix}"}


def test_breaker_opened_by_failures_stops_traffic_from_every_process(cluster: Cluster) -> None:
    bad = f"flaky-bad-{cluster.suffix}"
    cluster.upstream.set_behaviour("flaky-bad", "fail500")
    cluster.upstream.clear()
    flaky = {**CHAT, "model": "flaky"}
    first = [cluster.post(flaky) for _ in range(12)]  # one at a time: failures accumulate in order
    assert all(response.status_code == 200 for response in first)  # retries land on the good one
    cluster.wait_applied(f"breaker.{bad}")  # every process has the breaker open
    calls_when_open = sum(1 for r in cluster.upstream.requests if r["body"]["model"] == "flaky-bad")
    later = in_parallel(40, lambda: cluster.post(flaky))
    assert all(
        response.headers["x-routeiq-deployment-id"] == f"flaky-good-{cluster.suffix}" for response in later
    )
    calls_after = sum(1 for r in cluster.upstream.requests if r["body"]["model"] == "flaky-bad")
    assert calls_after == calls_when_open, "no process may call a deployment whose breaker is open"
    assert calls_when_open <= 4
    for _ in range(4):
        breakers = cluster.admin("GET", "/admin/breakers").json()["deployments"]
        assert breakers[bad]["state"] == "open"
        metrics = httpx.get(f"{cluster.url()}/metrics").text
        assert f'routeiq_circuit_state{{deployment="{bad}"}} 2.0' in metrics
