"""Live changes across 2 replicas x 2 workers on one Redis, as containers run them.

Each replica runs in PID and mount namespaces of its own (``unshare``), so its server is pid 1 and
its workers get the same small pids as the other replica's: whatever tells processes apart must not
be the pid. Every wait is on the versions the processes report at ``GET /admin/changes``, never a
sleep. A notice is dropped on purpose (a version written straight into Redis, never announced), and
Redis is restarted empty in the middle of a change: every process still converges.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from routeiq.state.changes import RECORDS
from tests.e2e.test_router_artifacts import MMLU_SMALL, train
from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream
from tests.support.redis_store import RedisServer, open_redis_store

ADMIN = {"authorization": "Bearer sk-admin"}
WORKERS = 2
REPLICAS = 2
INSTANCES = WORKERS * REPLICAS
STRATEGIES = "routing.strategies"
ROUTER = "routing.router.knn"
CONVERGE_SECONDS = 20.0  # a missed notice is repaired by the 2 s resync; this is the outer bound


def isolated(hidden: Path | None = None) -> tuple[str, ...]:
    """Run the server as pid 1 of a PID namespace of its own (its workers get pids 2, 3, ...), in a
    mount namespace where ``hidden`` (if given) is an empty directory: another machine's disk."""
    namespaces = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM")
    if hidden is None:
        return namespaces
    return (*namespaces, "sh", "-c", 'mount -t tmpfs none "$0" && exec "$@"', str(hidden))


@dataclass
class Cluster:
    replicas: list[Gateway]
    redis: RedisServer
    incoming: Path  # on replica 0's disk; replica 1 sees an empty directory there

    def admin(self, method: str, path: str, replica: int = 0, **kwargs: Any) -> httpx.Response:
        url = f"{self.replicas[replica].url}{path}"
        return httpx.request(method, url, headers=ADMIN, timeout=10, **kwargs)

    def chat(self, replica: int) -> httpx.Response:
        body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
        return httpx.post(f"{self.replicas[replica].url}/v1/chat/completions", json=body, timeout=30)

    def view(self) -> dict[str, Any]:
        response = self.admin("GET", "/admin/changes")
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view

    def wait_applied(self, subject: str, version: int | None = None) -> int:
        """Until all four processes report the same version of ``subject`` (``version`` if given)
        and it is the one Redis holds; returns it."""

        def converged() -> int:
            view = self.view()
            instances = view["instances"]
            assert len(instances) == INSTANCES, sorted(instances)
            applied = {report["applied"].get(subject) for report in instances.values()}
            assert len(applied) == 1, applied
            (seen,) = applied
            assert seen == view["subjects"].get(subject, 0), (seen, view["subjects"])
            assert version is None or seen == version, (seen, version)
            return int(seen)

        return eventually_sync(converged, timeout=CONVERGE_SECONDS)

    def strategies_served(self) -> set[str]:
        """The strategy named by 20 requests to each replica (each worker answers some of them)."""
        responses = [self.chat(replica) for replica in range(REPLICAS) for _ in range(20)]
        assert all(response.status_code == 200 for response in responses)
        return {response.headers["x-routeiq-strategy"] for response in responses}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("artifacts")
    return train(MMLU_SMALL, tmp / "first", 0), train(MMLU_SMALL, tmp / "second", 1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, artifacts: tuple[Path, Path]) -> Iterator[Cluster]:
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is required to give each replica its own PID namespace")
    tmp_path = tmp_path_factory.mktemp("cluster")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    with ExitStack() as stack:
        server = stack.enter_context(RedisServer(tmp_path))
        upstream = stack.enter_context(MockUpstream())
        config = {
            "model_list": [
                deployment("auto", "model-cheap", upstream.base_url, id="cheap", input_cost_per_token=1e-7),
                deployment("auto", "model-pricey", upstream.base_url, id="pricey", input_cost_per_token=1e-5),
            ],
            "router_settings": {"routing_strategy": "simple-shuffle"},
            "routeiq": {"learned_routers": {"knn": str(artifacts[0])}},
        }
        env = {"ROUTEIQ_REDIS_URL": server.url, "ROUTEIQ_ADMIN_KEYS": "sk-admin"}
        replicas = []
        for index in range(REPLICAS):
            launcher = isolated(hidden=incoming if index == 1 else None)
            replica = Gateway(config, tmp_path, env, args=("--workers", str(WORKERS)), launcher=launcher)
            replicas.append(stack.enter_context(replica))
            replica.wait_for_log("router built", count=WORKERS)
        yield Cluster(replicas, server, incoming)


def pids(gateway: Gateway) -> set[int]:
    return {httpx.get(f"{gateway.url}/_health/live", timeout=5).json()["pid"] for _ in range(30)}


def test_every_process_converges_through_dropped_notices_and_a_redis_restart(cluster: Cluster) -> None:
    # The replicas' workers really do share pids, and still count as four processes.
    assert pids(cluster.replicas[0]) & pids(cluster.replicas[1]), "the workers' pids should coincide"
    cluster.wait_applied(STRATEGIES, version=0)  # nothing changed yet, but all four report

    changed = cluster.admin("PUT", "/admin/strategy", json={"strategy": "cost-based-routing"})
    assert changed.status_code == 200, changed.text
    first = changed.json()["version"]
    cluster.wait_applied(STRATEGIES, first)
    assert cluster.strategies_served() == {"cost-based-routing"}

    # A notice dropped on purpose: the version is stored but never announced.
    dropped = asyncio.run(put_version(cluster.redis.url, {"default": "least-busy", "groups": {}}))
    assert dropped == first + 1
    cluster.wait_applied(STRATEGIES, dropped)
    assert cluster.strategies_served() == {"least-busy"}

    # Redis restarted empty in the middle of a change: stored, announced to nobody, then lost.
    asyncio.run(put_version(cluster.redis.url, {"default": "latency-based-routing", "groups": {}}))
    cluster.redis.restart()
    healed = cluster.wait_applied(STRATEGIES)
    assert healed in (dropped, dropped + 1)  # whichever the processes had applied, all agree on it
    served = cluster.strategies_served()
    assert len(served) == 1 and served <= {"least-busy", "latency-based-routing"}

    # And numbering goes on above anything applied: a new change reaches everyone.
    after = cluster.admin("PUT", "/admin/strategy", json={"strategy": "cost-based-routing"}, replica=1)
    assert after.status_code == 200, after.text
    assert after.json()["version"] > healed
    cluster.wait_applied(STRATEGIES, after.json()["version"])
    assert cluster.strategies_served() == {"cost-based-routing"}


def test_a_router_artifact_another_replica_cannot_read_is_reported_not_hidden(
    cluster: Cluster, artifacts: tuple[Path, Path], tmp_path: Path
) -> None:
    incoming = cluster.incoming / "knn"
    shutil.copytree(artifacts[1], incoming)
    reloaded = cluster.admin("POST", "/admin/routers/knn/reload", json={"path": str(incoming)})
    assert reloaded.status_code == 200, reloaded.text
    version, sha256 = reloaded.json()["version"], reloaded.json()["sha256"]

    def reported() -> dict[str, Any]:
        instances = cluster.view()["instances"]
        assert len(instances) == INSTANCES
        assert all(report["applied"].get(ROUTER) == version for report in instances.values())
        return instances

    instances = eventually_sync(reported, timeout=CONVERGE_SECONDS)
    failed = {name: report["failed"].get(ROUTER) for name, report in instances.items()}
    refused = [reason for reason in failed.values() if reason]
    assert len(refused) == WORKERS, failed  # exactly replica 1's two workers could not load it
    assert all(sha256[:12] in reason and "not readable" in reason for reason in refused)

    # Once the artifact is where replica 1 can read it, a reload from there reaches everyone.
    shared = tmp_path / "shared-knn"
    shutil.copytree(artifacts[1], shared)
    again = cluster.admin("POST", "/admin/routers/knn/reload", json={"path": str(shared)}, replica=1)
    assert again.status_code == 200, again.text

    def everyone_loaded() -> None:
        reports = cluster.view()["instances"].values()
        assert all(report["applied"].get(ROUTER) == again.json()["version"] for report in reports)
        assert not any(report["failed"].get(ROUTER) for report in reports)

    eventually_sync(everyone_loaded, timeout=CONVERGE_SECONDS)


async def put_version(url: str, value: dict[str, Any]) -> int:
    """Store the next version of the strategies straight into Redis, with no notice sent."""
    store = await open_redis_store("routeiq:", url=url)
    try:
        return await store.put_version(RECORDS, STRATEGIES, value)
    finally:
        await store.close()
