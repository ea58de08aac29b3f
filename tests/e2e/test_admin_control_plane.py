"""The control plane's login, metrics and plugin switches through the real server, on both state
backends: one worker on in-process state, and two gunicorn workers sharing Redis (the same numbers
whichever worker answers, a plugin switched off everywhere at once, and a live stream that outlives
a worker restart by reconnecting after its ``retry``)."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream
from tests.support.windows import MINUTE_SECONDS, wait_clear_of_rollover

MASTER = "sk-cp-master"
ADMIN_KEY = "sk-cp-admin"
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
REDIS_URL = "redis://127.0.0.1:6379/0"
EMAIL = "ann@example.com"


def config(api_base: str, prefix: str | None = None) -> dict[str, Any]:
    routeiq: dict[str, Any] = {
        "plugins": [{"name": "pii"}],
        "admin": {"metrics_stream_seconds": 0.5, "login_failures_per_minute": 3},
    }
    if prefix is not None:
        routeiq |= {"redis_url": REDIS_URL, "redis_key_prefix": prefix}
    prices = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    return {
        "model_list": [
            deployment("auto", "mock-alpha", api_base, id="alpha", tier="budget", **prices),
            deployment("auto", "mock-beta", api_base, id="beta", tier="premium", **prices),
        ],
        "routeiq": routeiq,
    }


ENV = {"ROUTEIQ_MASTER_KEY": MASTER, "ROUTEIQ_ADMIN_KEYS": ADMIN_KEY}


@dataclass
class Stack:
    gateway: Gateway
    upstream: MockUpstream
    workers: int

    @property
    def url(self) -> str:
        return self.gateway.url

    def chat(self, text: str = "hello there") -> httpx.Response:
        body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
        headers = {"authorization": f"Bearer {MASTER}"}
        return httpx.post(f"{self.url}/v1/chat/completions", json=body, headers=headers, timeout=20)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # A fresh connection each time, so that with two workers either may answer.
        return httpx.request(method, f"{self.url}{path}", headers=ADMIN, timeout=10, **kwargs)

    def metrics(self) -> dict[str, Any]:
        response = self.admin("GET", "/admin/metrics")
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        return payload


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with (
        MockUpstream() as upstream,
        Gateway(config(upstream.base_url), tmp_path_factory.mktemp("cp"), ENV) as gw,
    ):
        yield Stack(gw, upstream, 1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prefix = f"routeiq-test-cp-{uuid.uuid4().hex[:8]}:"
    tmp = tmp_path_factory.mktemp("cp-cluster")
    with MockUpstream() as upstream:
        with Gateway(config(upstream.base_url, prefix), tmp, ENV, args=("--workers", "2")) as gateway:
            gateway.wait_for_log("router built", count=2)
            yield Stack(gateway, upstream, 2)
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def assert_error(response: httpx.Response, status: int, code: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    assert response.headers["x-request-id"]


# Login -------------------------------------------------------------------------------------------


def test_login_takes_an_admin_key_in_the_body_only(single: Stack) -> None:
    def verify(body: Any) -> httpx.Response:
        return httpx.post(f"{single.url}/admin/auth/verify", json=body, timeout=10)  # no header at all

    # Failures are counted per clock minute: the whole sequence must fit in one.
    wait_clear_of_rollover(MINUTE_SECONDS, margin_seconds=30)
    ok = verify({"api_key": ADMIN_KEY})
    assert ok.status_code == 200 and ok.json() == {"valid": True, "role": "admin"}
    assert_error(verify({}), 400, None)
    assert_error(verify({"api_key": 42}), 400, None)
    for wrong in (MASTER, "sk-riq-0123456789abcdef", "nonsense"):  # 3 per minute in this config
        assert_error(verify({"api_key": wrong}), 401, "invalid_admin_key")
    limited = verify({"api_key": ADMIN_KEY})  # now even the right key waits for the next minute
    assert_error(limited, 429, "too_many_login_failures")
    assert int(limited.headers["retry-after"]) <= 60
    audit = single.admin("GET", "/admin/audit", params={"action": "admin.auth_failed"}).json()
    assert audit["data"] and ADMIN_KEY not in str(audit) and MASTER not in str(audit)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/metrics"),
        ("GET", "/admin/metrics/stream"),
        ("GET", "/admin/plugins"),
        ("POST", "/admin/plugins/pii/enable"),
        ("POST", "/admin/plugins/pii/disable"),
    ],
)
def test_every_endpoint_takes_only_the_admin_key(single: Stack, method: str, path: str) -> None:
    for headers in ({}, {"authorization": f"Bearer {MASTER}"}, {"authorization": "Bearer sk-riq-nope"}):
        response = httpx.request(method, f"{single.url}{path}", headers=headers, timeout=10)
        assert_error(response, 401, "invalid_admin_key")


# Metrics ------------------------------------------------------------------------------------------


def test_metrics_count_every_model_request(single: Stack) -> None:
    before = single.metrics()["requests_total"]
    for _ in range(4):
        assert single.chat().status_code == 200
    bad = httpx.post(
        f"{single.url}/v1/chat/completions",
        json={"model": "auto", "messages": "not a list"},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert bad.status_code == 400

    def counted() -> dict[str, Any]:
        payload = single.metrics()
        assert payload["requests_total"] == before + 5
        return payload

    payload = eventually_sync(counted)
    assert payload["scope"] == "cluster" and payload["window_seconds"] == 60
    assert payload["by_outcome"]["ok"] >= 4 and payload["errors_by_class"]
    assert payload["latency_ms"]["p50"] is not None and payload["routing_overhead_ms"]["p95"] is not None
    assert set(payload["by_tier"]) <= {"budget", "premium"} and payload["by_group"]["auto"] >= 4
    assert payload["tokens_per_minute"]["input"] > 0 and payload["cost_usd_per_minute"] > 0
    assert {b["deployment"] for b in payload["breakers"]} == {"alpha", "beta"}
    assert len(payload["series"]) == 30 and sum(p["requests"] for p in payload["series"]) >= 5


@dataclass
class StreamReader:
    """An EventSource in a thread: reads ``event: metrics`` events, and when the stream ends
    reconnects after the ``retry`` the server gave, as browsers do."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    connections: list[list[dict[str, Any]]] = field(default_factory=list)  # events per connection
    comments: list[str] = field(default_factory=list)
    retry_ms: int | None = None
    errors: list[str] = field(default_factory=list)

    def start(self) -> StreamReader:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        while not self.stop.is_set():
            events: list[dict[str, Any]] = []
            self.connections.append(events)
            try:
                with httpx.stream("GET", self.url, headers=ADMIN, timeout=10) as response:
                    assert response.status_code == 200 and response.headers["content-type"].startswith(
                        "text/event-stream"
                    )
                    for line in response.iter_lines():
                        if self.stop.is_set():
                            return
                        if line.startswith("retry: "):
                            self.retry_ms = int(line[7:])
                        elif line.startswith(":"):
                            self.comments.append(line)
                        elif line.startswith("data: "):
                            events.append(orjson.loads(line[6:]))
            except Exception as error:  # a worker killed mid-stream: reconnect, as EventSource does
                self.errors.append(f"{time.strftime('%H:%M:%S')} {type(error).__name__}: {error}")
            self.stop.wait((self.retry_ms or 3000) / 1000)

    def events(self) -> int:
        return sum(len(events) for events in self.connections)


def test_two_stream_clients_get_events_and_one_leaving_breaks_nothing(single: Stack) -> None:
    url = f"{single.url}/admin/metrics/stream"
    readers = [StreamReader(url).start() for _ in range(2)]
    with httpx.stream("GET", url, headers=ADMIN, timeout=10) as leaving:
        lines = leaving.iter_lines()
        assert next(lines) == "retry: 3000"
        assert any(line.startswith("event: metrics") for line in lines)
    # It left: the others carry on, and none of them holds a slot of the data plane.
    marks = [reader.events() for reader in readers]
    eventually_sync(lambda: all(r.events() >= m + 3 for r, m in zip(readers, marks, strict=True)))
    assert single.gateway.in_flight() == 0
    for reader in readers:
        reader.stop.set()
        assert reader.retry_ms == 3000 and ": heartbeat" in reader.comments and not reader.errors
        assert len(reader.connections) == 1
    assert single.chat().status_code == 200  # the gateway serves on


# Plugins ------------------------------------------------------------------------------------------


def test_plugins_list_their_state_and_counters_and_unknown_names_are_404(single: Stack) -> None:
    (pii,) = single.admin("GET", "/admin/plugins").json()["plugins"]
    assert pii["name"] == "pii" and pii["enabled"] is True
    assert pii["counters"]["scope"] == "cluster" and pii["counters"]["runs"] >= 1
    assert_error(single.admin("POST", "/admin/plugins/nope/disable"), 404, "plugin_not_found")
    assert_error(single.admin("POST", "/admin/plugins/cost_tracker/enable"), 404, "plugin_not_found")


# Two workers on Redis -----------------------------------------------------------------------------


def test_every_worker_reports_the_same_cluster_numbers(cluster: Stack) -> None:
    requests = 12
    for _ in range(requests):
        assert cluster.chat().status_code == 200

    def the_same_everywhere() -> None:
        answers = [cluster.metrics() for _ in range(6)]  # fresh connections: both workers answer
        assert {answer["scope"] for answer in answers} == {"cluster"}
        assert [answer["requests_total"] for answer in answers] == [requests] * 6
        assert len({orjson.dumps(answer["by_model"]) for answer in answers}) == 1

    eventually_sync(the_same_everywhere, timeout=20)


def wait_applied(stack: Stack, subject: str) -> int:
    def applied_everywhere() -> int:
        view = stack.admin("GET", "/admin/changes").json()
        version = view["subjects"].get(subject)
        assert version is not None and len(view["instances"]) == stack.workers, view
        assert {report["applied"].get(subject) for report in view["instances"].values()} == {version}
        return int(version)

    return eventually_sync(applied_everywhere)


def sent_texts(upstream: MockUpstream) -> list[str]:
    return [
        entry["body"]["messages"][0]["content"]
        for entry in upstream.requests
        if entry["path"].endswith("/chat/completions")
    ]


def test_a_disabled_plugin_is_skipped_on_every_worker_until_enabled(cluster: Stack) -> None:
    text = f"write to {EMAIL} please"
    switched = cluster.admin("POST", "/admin/plugins/pii/disable")
    assert switched.status_code == 200 and switched.json()["enabled"] is False
    assert wait_applied(cluster, "plugin.pii") == switched.json()["version"]
    cluster.upstream.clear()
    for _ in range(6):
        assert cluster.chat(text).status_code == 200
    assert sent_texts(cluster.upstream) == [text] * 6  # not redacted, on either worker
    plugins = [cluster.admin("GET", "/admin/plugins").json()["plugins"][0] for _ in range(4)]
    assert {p["enabled"] for p in plugins} == {False}

    assert cluster.admin("POST", "/admin/plugins/pii/enable").json()["enabled"] is True
    wait_applied(cluster, "plugin.pii")
    cluster.upstream.clear()
    for _ in range(6):
        assert cluster.chat(text).status_code == 200
    assert sent_texts(cluster.upstream) == ["write to [EMAIL] please"] * 6
    audit = cluster.admin("GET", "/admin/audit", params={"target": "pii"}).json()["data"]
    assert {"plugin.disable", "plugin.enable"} <= {record["action"] for record in audit}

    def counted_cluster_wide() -> None:
        counters = cluster.admin("GET", "/admin/plugins").json()["plugins"][0]["counters"]
        assert counters["scope"] == "cluster" and counters["runs"] >= 6 + 12

    eventually_sync(counted_cluster_wide)


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(entry.name))
    return pids


def test_the_stream_reconnects_after_a_worker_restart(cluster: Stack) -> None:
    """Workers restart one at a time (SIGTERM: drain, exit, gunicorn boots another) until the one
    holding the stream has: the stream ends cleanly, and the client is back after ``retry``."""
    reader = StreamReader(f"{cluster.url}/admin/metrics/stream").start()
    master = cluster.gateway.process.pid
    try:
        eventually_sync(lambda: reader.events() >= 2, timeout=20)
        for pid in worker_pids(master):
            if len(reader.connections) > 1:
                break
            os.kill(pid, signal.SIGTERM)

            def replaced(gone: int = pid) -> None:  # by a worker that serves (not one still booting)
                workers = worker_pids(master)
                assert len(workers) == 2 and gone not in workers, workers
                log = cluster.gateway.log()
                assert all(f"[{worker}] [INFO] Application startup complete" in log for worker in workers)

            eventually_sync(replaced, timeout=120)  # a new worker imports LiteLLM: slow when loaded
        eventually_sync(lambda: len(reader.connections) > 1 and len(reader.connections[-1]) >= 2, timeout=60)
        assert reader.retry_ms == 3000 and not reader.errors  # ended by the drain, not cut off
        assert reader.connections[-1][-1]["scope"] == "cluster"
    finally:
        reader.stop.set()
