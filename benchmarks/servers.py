"""Start, probe and stop the benchmark's server subprocesses.

Every server runs in its own session (process group) so it and anything it forks (e.g. a gunicorn
worker) are stopped together, by that group's id and nothing broader; the kernel is also asked to
signal the child if the harness dies without cleaning up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _child_setup(cpus: set[int] | None) -> Callable[[], None]:
    """Runs in the child before exec: die with the harness, start on the given CPUs."""

    def setup() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if cpus:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, cpus)

    return setup


@dataclasses.dataclass
class ServerSpec:
    """How to launch one server and how to tell it is ready."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str]
    cwd: Path
    ready_path: str = "/_health/ready"
    start_cpus: set[int] | None = None


class ServerProcess:
    """A running server subprocess with its output captured to a log file."""

    def __init__(self, spec: ServerSpec, log_dir: Path) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The root process id (the group id too)."""
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Launch without waiting; output goes to a file so a chatty server can never block on a pipe."""
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.spec.argv,
                cwd=self.spec.cwd,
                env=self.spec.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_child_setup(self.spec.start_cpus),
            )

    def alive(self) -> bool:
        """True while the root process runs."""
        return self.proc is not None and self.proc.poll() is None

    async def wait_ready(self, within_s: float) -> bool:
        """Poll the readiness path until 200, the process exits, or ``within_s`` seconds pass."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            if await http_status("127.0.0.1", self.spec.port, self.spec.ready_path) == 200:
                return True
            await asyncio.sleep(0.2)
        return False

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited within ``grace``."""
        if self.proc is None or self.proc.returncode is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
                return

    def log_tail(self, lines: int = 25) -> str:
        """The end of the server's output, to explain why it did not start."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


async def http_status(host: str, port: int, path: str, limit_s: float = 2.0) -> int | None:
    """Status of a GET, or None if nothing answers (used for readiness only)."""
    status, _ = await http_request(host, port, "GET", path, b"", limit_s)
    return status


async def http_request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes,
    limit_s: float = 2.0,
    headers: dict[str, str] | None = None,
) -> tuple[int | None, bytes]:
    """A one-shot HTTP/1.1 request on a fresh connection (control traffic, not load).

    ``headers`` replace the default credential (the benchmark's master key), e.g. with an admin key.
    """
    extra = headers if headers is not None else {"authorization": "Bearer sk-bench-master"}
    head = (
        f"{method} {path} HTTP/1.1\r\nhost: {host}:{port}\r\nconnection: close\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in extra.items())
        + f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    try:
        async with asyncio.timeout(limit_s):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(head.encode() + body)
            raw = await reader.read()
            writer.close()
    except (OSError, TimeoutError):
        return None, b""
    status_line, _, rest = raw.partition(b"\r\n")
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return None, b""
    return int(parts[1]), rest.partition(b"\r\n\r\n")[2]


def free_port() -> int:
    """An ephemeral loopback port that is free right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
