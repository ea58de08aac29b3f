"""Open a real RedisStateStore for tests (failing loudly if Redis is down), and clean up after; or
run a private ``redis-server`` a test may kill, restart or freeze."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from routeiq.state.base import StateStore, StateUnavailable
from routeiq.state.memory import MemoryStateStore
from routeiq.state.redis import RedisStateStore, create_redis_store

REDIS_URL = "redis://127.0.0.1:6379/0"


async def open_redis_store(
    prefix: str, url: str = REDIS_URL, timeout_seconds: float = 0.5
) -> RedisStateStore:
    store = create_redis_store(url, key_prefix=prefix, timeout_seconds=timeout_seconds)
    try:
        await store.ping()
    except StateUnavailable as error:
        await store.close()
        pytest.fail(f"Redis is required at {url} ({error}); start it with scripts/services.sh")
    await store.start()
    return store


async def purge(prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def state_store(kind: str, name: str = "test") -> AsyncIterator[StateStore]:
    """A started ``memory`` store, or a ``redis`` one under a fresh key prefix purged afterwards:
    for suites that run once against each."""
    if kind == "memory":
        memory = MemoryStateStore()
        await memory.start()
        try:
            yield memory
        finally:
            await memory.close()
        return
    prefix = f"{name}:{uuid.uuid4().hex}:"
    shared = await open_redis_store(prefix)
    try:
        yield shared
    finally:
        await shared.close()
        await purge(prefix)


class RedisServer:
    """A ``redis-server`` of the test's own on a free port, to kill clients, restart or freeze
    without touching the machine's shared Redis on 6379 (other suites use it meanwhile).

    No persistence: a restart starts empty, as a crashed cache-only Redis would.
    """

    def __init__(self, tmp_dir: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tmp_dir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is required on PATH (apt-get install redis-server)")
        command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        log = (self._dir / f"redis-{self.port}.log").open("ab")
        self._process = subprocess.Popen(command, cwd=self._dir, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return self
            except redis.exceptions.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signal.SIGCONT)  # a frozen server cannot exit
            self._process.kill()
        self._process.wait()
        self._process = None

    def restart(self) -> None:
        """Kill it and start a fresh one on the same port: every client connection is gone."""
        self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a hung Redis, a GC pause, a partition)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def kill_clients(self) -> int:
        """``CLIENT KILL TYPE normal``: drop every client connection but the one asking; how many."""
        with self.client() as admin:
            return int(admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisSentinel:
    """A Sentinel (``redis-server --sentinel``) of the test's own, monitoring ``master`` as ``name``."""

    def __init__(self, master: RedisServer, tmp_dir: Path, name: str = "routeiq-test") -> None:
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.name = name
        self._config = tmp_dir / f"sentinel-{self.port}.conf"
        self._config.write_text(
            f"port {self.port}\nbind 127.0.0.1\nsentinel monitor {name} 127.0.0.1 {master.port} 1\n"
        )
        self._dir = tmp_dir
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisSentinel:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is required on PATH (apt-get install redis-server)")
        self._process = subprocess.Popen(
            [binary, str(self._config), "--sentinel"],
            cwd=self._dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        sentinel = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name):
                    sentinel.close()
                    return self
            except redis.exceptions.ConnectionError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sentinel on port {self.port} did not start")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
