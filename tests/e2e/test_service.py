"""The gateway as a service: version agreement, health, shedding, CORS, auth defaults."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment, free_port
from tests.support.mock_upstream import MockUpstream

ROOT = Path(__file__).resolve().parents[2]
MMLU_SMALL = ROOT / "tests" / "fixtures" / "routellm-mmlu-small"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    with Gateway(config, tmp_path_factory.mktemp("demo")) as gateway:
        yield gateway


def test_every_surface_reports_the_same_version(demo: Gateway) -> None:
    expected = version("routeiq")
    cli = subprocess.run(
        [sys.executable, "-m", "routeiq", "version"], capture_output=True, text=True, check=True
    )
    assert cli.stdout.strip() == expected
    assert httpx.get(f"{demo.url}/openapi.json").json()["info"]["version"] == expected
    assert httpx.get(f"{demo.url}/_health/live").json()["version"] == expected
    ready = httpx.get(f"{demo.url}/_health/ready")
    assert ready.status_code == 200 and ready.json()["version"] == expected


def test_demo_routes_with_mock_deployments_and_open_data_plane(demo: Gateway) -> None:
    response = httpx.post(
        f"{demo.url}/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200
    tier = response.headers["x-routeiq-tier"]
    assert tier in {"budget", "standard", "premium"}
    assert f"the {tier} deployment" in response.json()["choices"][0]["message"]["content"]
    assert "ROUTEIQ_MASTER_KEY is not set" in demo.log()


def test_admin_closed_without_admin_keys(demo: Gateway) -> None:
    response = httpx.get(f"{demo.url}/admin/status", headers={"authorization": "Bearer anything"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "admin_disabled"
    assert "ROUTEIQ_ADMIN_KEYS" in response.json()["error"]["message"]  # how to open it
    assert response.headers["x-request-id"]


def test_unknown_route_and_method_use_the_envelope(demo: Gateway) -> None:
    missing = httpx.get(f"{demo.url}/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"
    wrong_method = httpx.get(f"{demo.url}/v1/chat/completions")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    assert wrong_method.headers["x-request-id"]


def test_shed_503_carries_request_id_and_cors(tmp_path: Path) -> None:
    with MockUpstream() as upstream:
        config = {
            "model_list": [deployment("slow", "gpt-chunkdelay300ms", upstream.base_url)],
            "routeiq": {"max_concurrent_requests": 1, "cors_allow_origins": ["https://app.example"]},
        }
        with Gateway(config, tmp_path) as gateway:
            body = {
                "model": "slow",
                "stream": True,
                "messages": [{"role": "user", "content": "tell me a story"}],
            }
            done = threading.Event()

            def hold_the_only_slot() -> None:
                with httpx.stream(
                    "POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=30
                ) as stream:
                    for _ in stream.iter_bytes():
                        pass
                done.set()

            holder = threading.Thread(target=hold_the_only_slot)
            holder.start()
            eventually_sync(lambda: gateway.in_flight() == 1)  # the stream holds the slot until it ends
            shed = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                json=body,
                headers={"origin": "https://app.example", "x-request-id": "shed-me"},
            )
            holder.join(timeout=30)
            assert done.is_set()
            assert shed.status_code == 503
            assert shed.json()["error"]["code"] == "overloaded"
            assert shed.headers["x-request-id"] == "shed-me"
            assert shed.headers["access-control-allow-origin"] == "https://app.example"
            assert int(shed.headers["retry-after"]) >= 1 and int(shed.headers["retry-after-ms"]) >= 1
            # Health is never shed, and once the stream ended the slot is free again.
            assert httpx.get(f"{gateway.url}/_health/ready").status_code == 200
            after = httpx.post(
                f"{gateway.url}/v1/chat/completions", json={**body, "stream": False}, timeout=30
            )
            assert after.status_code == 200


def test_queue_lets_a_short_burst_wait_instead_of_failing(tmp_path: Path) -> None:
    with MockUpstream() as upstream:
        config = {
            "model_list": [deployment("slow", "gpt-slow300ms", upstream.base_url)],
            "routeiq": {"max_concurrent_requests": 1, "queue_timeout_ms": 10000},
        }
        with Gateway(config, tmp_path) as gateway:
            body = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
            results: list[int] = []

            def call() -> None:
                results.append(
                    httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30).status_code
                )

            threads = [threading.Thread(target=call) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert results == [200, 200, 200]
            metrics = httpx.get(f"{gateway.url}/metrics").text
            assert 'routeiq_shed_requests_total{reason="overloaded"} 0.0' in metrics


def test_group_with_every_breaker_open_fails_fast_with_503(tmp_path: Path) -> None:
    with MockUpstream() as upstream:
        config = {
            "model_list": [deployment("down", "gpt-fail500", upstream.base_url, id="down-only")],
            "router_settings": {"num_retries": 0, "allowed_fails": 1000},  # leave it to the breaker
            "routeiq": {"circuit_breaker": {"consecutive_failures": 2, "open_seconds": 45}},
        }
        with Gateway(config, tmp_path) as gateway:
            body = {"model": "down", "messages": [{"role": "user", "content": "hi"}]}
            url = f"{gateway.url}/v1/chat/completions"
            assert [httpx.post(url, json=body).status_code for _ in range(2)] == [502, 502]
            upstream.clear()
            refused = httpx.post(url, json=body)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "circuit_open"
            assert 30 <= int(refused.headers["retry-after"]) <= 45
            assert upstream.requests == [], "an open breaker means no upstream call at all"
            ready = httpx.get(f"{gateway.url}/_health/ready").json()
            assert ready["checks"]["open_circuits"] == ["down-only"]


def test_serve_without_deployments_is_up_but_not_ready(tmp_path: Path) -> None:
    """No --config: the process answers, but readiness is 503 and says what to do."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ROUTEIQ_")}
    env["ROUTEIQ_DATA_DIR"] = str(tmp_path / "data")
    command = [sys.executable, "-m", "routeiq", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        live = None
        for _ in range(600):
            assert process.poll() is None, log_path.read_text()
            try:
                live = httpx.get(f"http://127.0.0.1:{port}/_health/live", timeout=1.0)
                ready = httpx.get(f"http://127.0.0.1:{port}/_health/ready", timeout=1.0)
                if ready.json()["status"] != "starting":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert live is not None and live.status_code == 200
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_configured"
        assert "pass --config FILE" in ready.json()["checks"]["config"]
        assert "NO DEPLOYMENTS CONFIGURED" in log_path.read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_unreachable_redis_is_one_degraded_state_not_a_traceback_flood(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    env = {"ROUTEIQ_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there
    with Gateway(config, tmp_path, env) as gateway:
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(5):
            assert httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30).status_code == 200
        ready = httpx.get(f"{gateway.url}/_health/ready").json()
        assert ready["status"] == "degraded" and ready["checks"]["state"].startswith("degraded")
        log = gateway.log()
    assert "Traceback" not in log, log
    assert "Task exception was never retrieved" not in log
    assert [line for line in log.splitlines() if "LiteLLM" in line and "Redis" in line] == []
    assert log.count("shared state unavailable") == 1, log


def test_relative_learned_router_path_is_read_from_the_config_directory(tmp_path: Path) -> None:
    """A relative learned_routers path used to pass check-config and crash serve."""
    config_dir = tmp_path / "conf"
    out = config_dir / "routers" / "knn"
    train = ["train", "--algo", "knn", "--data", str(MMLU_SMALL), "--out", str(out)]
    trained = subprocess.run(
        [sys.executable, "-m", "routeiq", *train],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["router_settings"]["group_strategies"] = {"auto": "llmrouter-knn"}
    config["routeiq"]["learned_routers"] = {"knn": "routers/knn"}
    # The gateway runs from the repository root; the path is relative to the config file's directory.
    with Gateway(config, config_dir) as gateway:
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
        assert response.status_code == 200
        assert response.headers["x-routeiq-strategy"] == "llmrouter-knn"
