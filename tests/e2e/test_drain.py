"""SIGTERM drains: readiness and new requests get 503 at once, the stream in flight ends whole,
then the process exits 0 — with one worker and with several."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
import pytest

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

CHUNK_DELAY_MS = 150


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_the_stream_finish_and_refuses_new_work(tmp_path: Path, workers: int) -> None:
    with MockUpstream() as upstream:
        config = {
            "model_list": [deployment("slow", f"story-chunkdelay{CHUNK_DELAY_MS}ms", upstream.base_url)],
            "routeiq": {"drain_timeout_seconds": 20},
        }
        gateway = Gateway(config, tmp_path, args=("--workers", str(workers))).start()
        if workers > 1:
            gateway.wait_for_log("router built", count=workers)
            assert "in-memory state" in gateway.log() and "PER PROCESS" in gateway.log()
        try:
            body = {
                "model": "slow",
                "stream": True,
                "messages": [{"role": "user", "content": "tell me a long story"}],
            }
            received: list[bytes] = []
            first_chunk = threading.Event()

            def stream() -> None:
                with httpx.stream(
                    "POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=30
                ) as response:
                    for chunk in response.iter_raw():
                        received.append(chunk)
                        first_chunk.set()

            reader = threading.Thread(target=stream)
            reader.start()
            assert first_chunk.wait(10), "the stream never started"
            gateway.process.send_signal(signal.SIGTERM)

            def draining() -> None:
                ready = httpx.get(f"{gateway.url}/_health/ready", timeout=10)
                assert ready.status_code == 503 and ready.json()["status"] == "draining"

            eventually_sync(draining)  # the signal has reached the worker

            refused = httpx.post(
                f"{gateway.url}/v1/chat/completions", json={**body, "stream": False}, timeout=10
            )
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "draining"
            assert int(refused.headers["retry-after"]) >= 1 and refused.headers["x-request-id"]
            ready = httpx.get(f"{gateway.url}/_health/ready", timeout=10)
            assert ready.status_code == 503 and ready.json()["status"] == "draining"

            reader.join(timeout=30)
            text = b"".join(received).decode()
            assert text.rstrip().endswith("data: [DONE]"), text[-200:]
            assert '"error"' not in text
            assert gateway.process.wait(timeout=30) == 0
        finally:
            gateway.stop()
