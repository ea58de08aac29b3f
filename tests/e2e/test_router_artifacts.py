"""Trained routers in the gateway: served by llmrouter-knn, hot-swapped under load without a failed
request, and a tampered artifact refused while the old router keeps serving."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.gateway import Gateway

ROOT = Path(__file__).resolve().parents[2]
MMLU_SMALL = ROOT / "tests" / "fixtures" / "routellm-mmlu-small"
ADMIN = {"authorization": "Bearer sk-admin"}


def train(data: Path, out: Path, seed: int) -> Path:
    command = [
        sys.executable,
        "-m",
        "routeiq",
        "train",
        "--algo",
        "knn",
        "--data",
        str(data),
        "--out",
        str(out),
    ]
    result = subprocess.run([*command, "--seed", str(seed)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("artifacts")
    return train(MMLU_SMALL, tmp / "first", 0), train(MMLU_SMALL, tmp / "second", 1)


@pytest.fixture(scope="module")
def gateway(artifacts: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["router_settings"]["group_strategies"] = {"auto": "llmrouter-knn"}
    config.setdefault("routeiq", {})["learned_routers"] = {"knn": str(artifacts[0])}
    with Gateway(config, tmp_path_factory.mktemp("gw"), {"ROUTEIQ_ADMIN_KEYS": "sk-admin"}) as gateway:
        yield gateway


def ask(gateway: Gateway) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)


def test_trained_router_serves_its_group(gateway: Gateway) -> None:
    response = ask(gateway)
    assert response.status_code == 200
    assert response.headers["x-routeiq-strategy"] == "llmrouter-knn"


def test_hot_swap_under_load_fails_no_request(gateway: Gateway, artifacts: tuple[Path, Path]) -> None:
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            statuses.append(ask(gateway).status_code)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        for directory in (artifacts[1], artifacts[0], artifacts[1]):
            swap = httpx.post(
                f"{gateway.url}/admin/routers/knn/reload",
                json={"path": str(directory)},
                headers=ADMIN,
                timeout=60,
            )
            assert swap.status_code == 200, swap.text
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert statuses and set(statuses) == {200}


def test_tampered_artifact_is_refused_and_the_old_one_keeps_serving(
    gateway: Gateway, artifacts: tuple[Path, Path], tmp_path: Path
) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(artifacts[1], tampered)
    victim = next(path for path in sorted(tampered.iterdir()) if path.suffix in (".npy", ".npz"))
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    refused = httpx.post(
        f"{gateway.url}/admin/routers/knn/reload", json={"path": str(tampered)}, headers=ADMIN, timeout=60
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "artifact_refused"
    assert "sha256" in refused.json()["error"]["message"].lower()
    still = ask(gateway)
    assert still.status_code == 200 and still.headers["x-routeiq-strategy"] == "llmrouter-knn"
