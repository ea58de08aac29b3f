"""The control plane's engines on in-process state: cluster metrics (two instances on one store stand
for two workers), the live metrics stream, switching plugins on and off, and the admin login."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from routeiq.api.admin.metrics import MetricsSnapshot, metrics_events
from routeiq.api.errors import APIError
from routeiq.governance.admin_login import AdminLogin
from routeiq.governance.call import GovernedCall, Served
from routeiq.governance.identity import ANONYMOUS
from routeiq.observability.cluster_metrics import (
    ClusterMetrics,
    histogram_index,
    histogram_value,
    percentile,
)
from routeiq.plugins.builtin.pii import PiiPlugin, PiiSettings
from routeiq.plugins.manager import LoadedPlugin, PluginManager
from routeiq.resilience.traffic import TrafficGate
from routeiq.routing.decision import FailedAttempt, RequestTrace
from routeiq.state.base import StateUnavailable
from routeiq.state.changes import LiveChanges
from routeiq.state.memory import MemoryStateStore
from routeiq.store.records import AuditRecord

NOW = 1_700_000_005.0  # 5 s into a 10-second bucket


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def served_trace(model: str = "gpt-a", tier: str = "budget", routing_ms: float = 0.5) -> RequestTrace:
    deployment = SimpleNamespace(id="d1", group="auto", upstream_model=model, tier=tier)
    decision: Any = SimpleNamespace(deployment=deployment, strategy="simple-shuffle", tier=None)
    return RequestTrace(
        group="auto",
        strategy="simple-shuffle",
        decision=decision,
        served=True,
        routing_seconds=routing_ms / 1000,
    )


def served_call(cost: float = 0.001) -> GovernedCall:
    call = GovernedCall(ANONYMOUS, "r", "POST", "/v1/chat/completions", None, True)
    call.served = Served("d1", "auto", "openai/gpt-a")
    call.usage = {"prompt_tokens": 10, "completion_tokens": 5}
    call.cost_usd = cost
    return call


def two_workers(store: Any, clock: Clock) -> tuple[ClusterMetrics, ClusterMetrics]:
    gate = TrafficGate(10, 0, 0)
    return (
        ClusterMetrics(store, gate, "w1", shared=True, clock=clock),
        ClusterMetrics(store, gate, "w2", shared=True, clock=clock),
    )


def test_histogram_bounds_and_percentiles() -> None:
    assert histogram_index(1.0) == 0 and histogram_index(2.0) == 4
    assert histogram_value(4) == pytest.approx(2 ** (3.5 / 4))  # the middle of (1.68, 2]
    assert histogram_index(0) == histogram_index(1e-9) == -40
    histogram = {histogram_index(10): 90, histogram_index(1000): 10}
    assert percentile(histogram, 0.5) == pytest.approx(10, rel=0.2)
    assert percentile(histogram, 0.95) == pytest.approx(1000, rel=0.2)
    assert percentile({}, 0.5) is None


async def test_two_workers_add_up_and_either_reads_the_same_numbers() -> None:
    store, clock = MemoryStateStore(), Clock()
    first, second = two_workers(store, clock)
    for _ in range(9):
        first.observe(served_trace(), served_call(), 200, "ok", None, 0.010)
    second.observe(served_trace(model="gpt-b", tier="premium"), served_call(), 200, "ok", None, 1.0)
    failed = RequestTrace(
        group="auto",
        strategy="simple-shuffle",
        failures=[FailedAttempt("d1", "auto", "upstream_error", 502, "x")],
    )
    second.observe(failed, None, 502, "failed", "upstream_error", 0.2)
    second.observe(RequestTrace(), None, 401, "rejected", "invalid_api_key", 0.001)
    await first.flush()
    await second.flush()

    one, other = await first.snapshot(), await second.snapshot()
    assert {**one, "generated_at": 0} == {**other, "generated_at": 0}
    assert one["scope"] == "cluster" and one["requests_total"] == 12
    assert one["errors_by_class"] == {"upstream_error": 1, "invalid_api_key": 1}
    assert one["error_rate"] == round(2 / 12, 4)
    assert one["by_model"] == {"gpt-a": 9, "gpt-b": 1} and one["by_tier"] == {"budget": 9, "premium": 1}
    assert one["by_group"] == {"auto": 11} and one["by_strategy"] == {"simple-shuffle": 11}
    assert one["latency_ms"]["p50"] == pytest.approx(10, rel=0.2)
    assert one["latency_ms"]["p99"] == pytest.approx(1000, rel=0.2)
    assert one["routing_overhead_ms"]["p50"] == pytest.approx(0.5, rel=0.2)
    assert one["requests_per_second"] == pytest.approx(12 / 55, rel=0.01)  # 5 buckets + 5 s
    assert one["cost_usd_per_minute"] == pytest.approx(0.010 * 60 / 55, rel=0.01)
    assert one["tokens_per_minute"] == {"input": round(100 * 60 / 55, 3), "output": round(50 * 60 / 55, 3)}
    series = one["series"]
    assert len(series) == 30 and series[-1]["t"] == 1_700_000_000 and series[-1]["requests"] == 12
    assert series[-1]["errors"] == 2 and series[-1]["input_tokens"] == 100
    assert series[-1]["cost_usd"] == pytest.approx(0.010)
    assert sum(point["requests"] for point in series[:-1]) == 0
    MetricsSnapshot.model_validate({**one, "breakers": []})  # the route's model takes it


async def test_the_window_moves_on_and_old_buckets_leave_the_series() -> None:
    store, clock = MemoryStateStore(), Clock()
    worker, _ = two_workers(store, clock)
    worker.observe(served_trace(), served_call(), 200, "ok", None, 0.01)
    await worker.flush()
    clock.now += 120  # two minutes on: out of the window, still in the series
    snapshot = await worker.snapshot()
    assert snapshot["requests_total"] == 0 and snapshot["latency_ms"]["p50"] is None
    assert sum(point["requests"] for point in snapshot["series"]) == 1
    clock.now += 300
    assert sum(point["requests"] for point in (await worker.snapshot())["series"]) == 0


class Unreachable:
    """A shared store that is away, as a fail-closed Redis store raises."""

    backend = "redis"

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise StateUnavailable("redis unreachable: test")

        return fail


async def test_with_the_shared_state_away_counts_wait_and_the_snapshot_says_worker() -> None:
    clock = Clock()
    worker = ClusterMetrics(Unreachable(), TrafficGate(10, 0, 0), "w1", shared=True, clock=clock)  # type: ignore[arg-type]
    worker.observe(served_trace(), served_call(), 200, "ok", None, 0.01)
    with pytest.raises(StateUnavailable):
        await worker.flush()
    snapshot = await worker.snapshot()
    assert snapshot["scope"] == "worker" and snapshot["requests_total"] == 1  # kept, not lost


async def test_gate_reports_are_summed_over_live_workers() -> None:
    store, clock = MemoryStateStore(), Clock()
    gate = TrafficGate(10, 0, 0)
    gate.in_flight = 3
    workers = [ClusterMetrics(store, gate, f"w{i}", shared=True, clock=clock) for i in range(2)]
    for worker in workers:
        await worker.flush()
    assert (await workers[0].snapshot())["in_flight"] == 6
    clock.now += 10  # neither reported since: both gone
    assert (await workers[0].snapshot())["in_flight"] == 0


async def test_the_stream_sends_retry_events_heartbeats_and_ends_on_drain() -> None:
    store, clock = MemoryStateStore(), Clock()
    gate = TrafficGate(10, 0, 0)
    worker = ClusterMetrics(store, gate, "w1", shared=True, clock=clock)
    runtime: Any = SimpleNamespace(
        cluster_metrics=worker, breakers=None, deployments=[SimpleNamespace(id="d1")]
    )
    stream = metrics_events(runtime, gate, interval=0.1)
    chunks = [await anext(stream) for _ in range(4)]
    assert chunks[0] == b"retry: 3000\n\n"
    assert chunks[1].startswith(b"event: metrics\ndata: ") and chunks[2] == b": heartbeat\n\n"
    payload = orjson.loads(chunks[1].split(b"data: ", 1)[1])
    assert payload["breakers"] == [{"deployment": "d1", "state": "closed"}]
    assert chunks[3].startswith(b"event: metrics")
    gate.start_draining()
    assert [chunk async for chunk in stream] in ([], [b": heartbeat\n\n"])  # then it ends


def pii_manager() -> PluginManager:
    return PluginManager(
        [LoadedPlugin(PiiPlugin(PiiSettings()), "builtin", 1, timeout_seconds=1, abort=False)]
    )


async def test_a_plugin_switched_off_on_one_worker_is_off_on_every_worker() -> None:
    store = MemoryStateStore()
    managers = [pii_manager(), pii_manager()]
    for index, manager in enumerate(managers):
        manager.follow(LiveChanges(store, f"w{index}"))
        await manager._changes.start()  # type: ignore[union-attr]
    version = await managers[0].set_enabled("pii", False)
    assert version == 1
    await managers[1]._changes.resync()  # type: ignore[union-attr]  # (a notice would do it at once)
    for manager in managers:
        assert not manager.active and manager.pre_call == []
        call = GovernedCall(
            ANONYMOUS,
            "r",
            "POST",
            "/v1/chat/completions",
            None,
            True,
            body={"model": "auto", "messages": [{"role": "user", "content": "a@b.io"}]},
            body_loaded=True,
        )
        await manager.run_pre_call(call)
        assert call.body is not None and call.body["messages"][0]["content"] == "a@b.io"
    assert (await managers[1].health())[0]["enabled"] is False
    await managers[1].set_enabled("pii", True)
    await managers[0]._changes.resync()  # type: ignore[union-attr]
    assert all(manager.pre_call for manager in managers)
    with pytest.raises(KeyError):
        await managers[0].set_enabled("nope", True)
    for manager in managers:
        await manager._changes.close()  # type: ignore[union-attr]


async def test_plugin_counters_add_up_over_workers() -> None:
    store = MemoryStateStore()
    managers = [pii_manager(), pii_manager()]
    services: Any = SimpleNamespace(state=store)
    for manager in managers:
        await manager.start(services)
    for manager, runs in zip(managers, (2, 3), strict=True):
        for _ in range(runs):
            call = GovernedCall(
                ANONYMOUS,
                "r",
                "POST",
                "/v1/chat/completions",
                None,
                True,
                body={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
                body_loaded=True,
            )
            await manager.run_pre_call(call)
    await managers[0].flush_counters()
    await managers[0].flush_counters()  # nothing new: nothing added twice
    scope, counters = await managers[1].counters()  # its own 3 unflushed, and the other's 2
    assert scope == "cluster" and counters["pii"]["runs"] == 5
    await managers[1].flush_counters()
    assert (await managers[0].counters())[1]["pii"]["runs"] == 5
    for manager in managers:
        await manager.close()


class Audit:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    async def write(self, record: AuditRecord) -> int:
        self.records.append(record)
        return len(self.records)


async def test_admin_login_accepts_admin_keys_only_and_limits_guessing() -> None:
    audit = Audit()
    login = AdminLogin(["sk-admin"], MemoryStateStore(), audit, failures_per_minute=3)  # type: ignore[arg-type]
    identity = await login.verify("sk-admin", source="10.0.0.1", route="/admin/auth/verify", request_id="r")
    assert identity.kind == "admin"
    assert audit.records[-1].action == "admin.login" and "sk-admin" not in str(audit.records[-1])
    for key in ("sk-riq-virtual", "wrong", "sk-admin-but-longer"):
        with pytest.raises(APIError) as refused:
            await login.verify(key, source="10.0.0.1", route="/admin/auth/verify", request_id="r")
        assert (refused.value.status, refused.value.code) == (401, "invalid_admin_key")
    with pytest.raises(APIError) as limited:  # now even the right key waits for the next minute
        await login.verify("sk-admin", source="10.0.0.1", route="/admin/auth/verify", request_id="r")
    assert limited.value.status == 429 and "retry-after" in limited.value.headers
    assert (await login.verify("sk-admin", source="10.0.0.2", route="/", request_id=None)).kind == "admin"
    assert [r.action for r in audit.records].count("admin.auth_failed") == 1  # one per source a minute
