"""Start the real gateway (``python -m routeiq serve``) as a subprocess for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

# A deadline, not a wait: a gateway is usually ready in seconds, but a loaded 2-core machine has
# taken over a minute to import LiteLLM.
READY_TIMEOUT_SECONDS = 180.0
# The same for a one-shot ``routeiq`` command (check-config, db, serve that fails at startup).
COMMAND_TIMEOUT_SECONDS = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gateway:
    """A gateway process serving ``config`` on a free loopback port."""

    def __init__(
        self,
        config: dict[str, Any],
        tmp_dir: Path,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        launcher: tuple[str, ...] = (),
    ) -> None:
        """``launcher`` runs the server through another command, e.g. ``unshare`` for namespaces."""
        self.args = args
        self.launcher = launcher
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = tmp_dir / f"gateway-{self.port}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = tmp_dir / f"gateway-{self.port}.log"
        self._env = {key: value for key, value in os.environ.items() if not key.startswith("ROUTEIQ_")}
        # Each gateway keeps its SQLite database in the test's own directory.
        self._env["ROUTEIQ_DATA_DIR"] = str(tmp_dir / f"data-{self.port}")
        self._env.update(env or {})
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Gateway:
        command = [
            *self.launcher,
            sys.executable,
            "-m",
            "routeiq",
            "serve",
            "--config",
            str(self.config_path),
        ]
        command += ["--host", "127.0.0.1", "--port", str(self.port), *self.args]
        with self.log_path.open("wb") as log:
            # A session of its own, so that stop() can take down gunicorn's workers too.
            self._process = subprocess.Popen(
                command, env=self._env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self._process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/_health/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway not ready after {READY_TIMEOUT_SECONDS}s:\n{self.log()}")

    def wait_for_log(self, text: str, count: int, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait until ``text`` appears ``count`` times in the log (say, once per worker started)."""
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{text!r} not seen {count} times:\n{self.log()}")
            time.sleep(0.2)

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "start() first"
        return self._process

    def stop(self) -> None:
        """SIGTERM (a graceful drain), then SIGKILL for the whole process group if it lingers."""
        if self._process is None:
            return
        if self._process.poll() is None:
            if self.launcher:  # e.g. unshare neither dies of SIGTERM nor passes it on: tell them all
                os.killpg(self._process.pid, signal.SIGTERM)
            else:
                self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def in_flight(self, headers: dict[str, str] | None = None) -> float:
        """Requests the answering worker is serving now, from ``/metrics`` (never shed, so it answers
        while the data plane is full): what a test waits on before it relies on a slot being taken."""
        text = httpx.get(f"{self.url}/metrics", headers=headers, timeout=10).text
        for line in text.splitlines():
            if line.startswith("routeiq_in_flight_requests "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError("routeiq_in_flight_requests is missing from /metrics")

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def deployment(group: str, model: str, api_base: str, **info: Any) -> dict[str, Any]:
    """A model_list entry pointing at the mock upstream."""
    entry: dict[str, Any] = {
        "model_name": group,
        "litellm_params": {"model": f"openai/{model}", "api_base": api_base, "api_key": "sk-upstream"},
    }
    if info:
        entry["model_info"] = info
    return entry
