"""RouteIQ performance benchmark: ``python -m benchmarks.run [--quick] [--json PATH] [--duration S]``.

These targets are measured side by side in one run, against one zero-delay mock upstream:

1. ``direct``               the mock itself (the client's own round trip)
2. ``floor``                FastAPI + one aiohttp session forwarding bytes (``floor_app.py``)
3. ``routeiq_passthrough``  ``routeiq serve`` with its default (passthrough) executor
4. ``routeiq_messages``     ``routeiq serve``, Anthropic's ``/v1/messages`` to an Anthropic-wire
                            deployment (forwarded as sent): the same load, as Messages calls
5. ``routeiq_litellm``      ``routeiq serve`` with ``ROUTEIQ_PASSTHROUGH=off``
6. ``bare_router``          FastAPI + ``litellm.Router.acompletion`` (``bare_router_app.py``)
7. the governed scenarios   ``routeiq serve`` with Redis, policy, plugins, virtual keys (``governed.py``)

After the interleaved rounds: the fully governed configuration with 1 and 2 workers (scaling), and a
long saturation run of it (``--soak``) before every worker's RSS is read.

Each server runs as its own subprocess (one uvicorn worker, uvloop + httptools, no access log),
pinned to core 0 once it is ready; the mock and this process (the load generator) share core 1.
Phases are interleaved across targets so slow drift on a noisy machine hits all of them alike.
Results are ratios to the floor measured in the same run; the BRIEF §6 targets are printed as
PASS/FAIL but never turn into a failing exit code — only a harness that could not run exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from benchmarks import governed, guardrails, procstat
from benchmarks.governed import FULLY_GOVERNED, RedisDb, Scenario
from benchmarks.loadgen import Endpoint, LoadResult, build_request, percentile, run_load
from benchmarks.report import (
    TargetResult,
    evaluate,
    render_governed,
    render_table,
    render_verdicts,
    summarise,
)
from benchmarks.servers import ServerProcess, ServerSpec, free_port, http_request

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
MASTER_KEY = "sk-bench-master"
AUTH_HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}
PAYLOAD: dict[str, Any] = {"model": "bench", "messages": [{"role": "user", "content": "hello"}]}
# The Anthropic-wire passthrough's load: the same prompt as a Messages call.
MESSAGES_PATH = "/v1/messages"
MESSAGES_PAYLOAD: dict[str, Any] = {**PAYLOAD, "max_tokens": 64}
MESSAGES_HEADERS = {**AUTH_HEADERS, "anthropic-version": "2023-06-01"}
DEFAULT_JSON = REPO_ROOT / "benchmarks" / "results" / "latest.json"
UVICORN_FLAGS = ["--no-access-log", "--loop", "uvloop", "--http", "httptools", "--workers", "1"]

LABELS = {
    "direct": "direct (mock)",
    "floor": "floor (aiohttp)",
    "routeiq_passthrough": "RouteIQ passthrough",
    "routeiq_messages": "RouteIQ Anthropic wire",
    "routeiq_litellm": "RouteIQ LiteLLM",
    "bare_router": "bare litellm Router",
    **governed.SHORT_LABELS,
}
# ``--only governed``: every row of the governed table, and the bare Router its RSS is compared to.
GROUPS = {"governed": (*governed.BY_KEY, "bare_router")}


class HarnessError(RuntimeError):
    """The benchmark could not run (as opposed to a target missing its goal)."""


# Settings ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved run parameters; ``--quick`` scales every window down."""

    duration: float
    short: float
    warmup: float
    rounds: int
    concurrency: int
    stream_concurrency: int
    chunks: int
    chunk_delay_ms: float
    ready_timeout: float
    request_timeout: float
    json_path: Path | None
    targets: tuple[str, ...]
    soak: float
    scaling: bool
    redis_url: str


def parse_args(argv: list[str] | None) -> Settings:
    """CLI → Settings."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (under a minute)")
    parser.add_argument("--duration", type=float, help="saturation window per target and round, seconds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds; best round is reported")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"JSON output (default {DEFAULT_JSON})"
    )
    parser.add_argument("--no-json", action="store_true", help="do not write JSON")
    parser.add_argument("--concurrency", type=int, default=64, help="clients for the saturation phase")
    parser.add_argument("--stream-concurrency", type=int, default=16, help="clients for the stream CPU phase")
    parser.add_argument("--chunks", type=int, default=20, help="chunks per streamed mock response")
    parser.add_argument("--chunk-delay-ms", type=float, default=1.0, help="mock gap between stream chunks")
    parser.add_argument(
        "--ready-timeout", type=float, default=120.0, help="seconds a server may take to be ready"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[*LABELS, *GROUPS],
        help="measure only these targets ('governed': the five governed configurations + bare Router)",
    )
    parser.add_argument(
        "--soak",
        type=float,
        help="seconds of saturation on the fully governed target before RSS is read (default 60; 0: none)",
    )
    parser.add_argument("--no-scaling", action="store_true", help="skip the 1 vs 2 workers measurement")
    parser.add_argument(
        "--redis-url",
        default=governed.DEFAULT_REDIS_URL,
        help=f"Redis db of the governed scenarios, flushed per window ({governed.DEFAULT_REDIS_URL})",
    )
    args = parser.parse_args(argv)
    duration = args.duration or (1.5 if args.quick else 5.0)
    chosen = [key for name in (args.only or LABELS) for key in GROUPS.get(name, (name,))]
    targets = set(chosen) | {"direct", "floor"}  # the baselines are always needed
    return Settings(
        duration=duration,
        short=max(1.0, duration * 0.6),
        warmup=0.5 if args.quick else 1.0,
        rounds=max(1, args.rounds or (1 if args.quick else 2)),
        concurrency=args.concurrency,
        stream_concurrency=args.stream_concurrency,
        chunks=max(1, args.chunks),
        chunk_delay_ms=max(0.0, args.chunk_delay_ms),
        ready_timeout=args.ready_timeout,
        request_timeout=5.0,
        json_path=None if args.no_json else args.json,
        targets=tuple(key for key in LABELS if key in targets),
        soak=max(0.0, args.soak if args.soak is not None else (10.0 if args.quick else 60.0)),
        scaling=not args.no_scaling,
        redis_url=args.redis_url,
    )


# CPU placement -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Placement:
    """Which cores servers and the client use; ``pinned`` is False where pinning is impossible."""

    all_cpus: frozenset[int]
    server: frozenset[int]
    client: frozenset[int]
    pinned: bool

    @classmethod
    def detect(cls) -> Placement:
        """Gateway on the first allowed core, mock + load generator on the second."""
        cpus = frozenset(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls(cpus, cpus, cpus, False)
        first, second = sorted(cpus)[:2]
        try:
            os.sched_setaffinity(0, {second})
        except OSError:
            return cls(cpus, cpus, cpus, False)
        return cls(cpus, frozenset({first}), frozenset({second}), True)

    def describe(self) -> str:
        """For the report header."""
        if not self.pinned:
            return f"unpinned ({len(self.all_cpus)} cpu)"
        return f"servers on cpu {sorted(self.server)}, mock + load generator on cpu {sorted(self.client)}"


# Targets -----------------------------------------------------------------------------------
@dataclasses.dataclass
class Target:
    """A measured endpoint, the process whose CPU/RSS is charged to it, and its results."""

    result: TargetResult
    port: int
    server: ServerProcess | None = None
    pid: int | None = None
    ready_timeout: float = 60.0
    scenario: Scenario | None = None  # RouteIQ targets: the configuration it serves
    auth_headers: dict[str, str] = dataclasses.field(default_factory=lambda: dict(AUTH_HEADERS))
    path: str = Endpoint.path  # the API it is sent (Messages for the Anthropic-wire passthrough)
    payload: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(PAYLOAD))

    @property
    def uses_redis(self) -> bool:
        """Its state is in the benchmark's Redis database (flushed before each window)."""
        return self.scenario is not None and self.scenario.redis

    @property
    def key(self) -> str:
        """Stable identifier used in JSON."""
        return self.result.key

    @property
    def endpoint(self) -> Endpoint:
        """Where the load goes."""
        return Endpoint(HOST, self.port, self.path)


def base_env(upstream: str) -> dict[str, str]:
    """Environment shared by every server: repo importable, no cost-map download."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["BENCH_UPSTREAM"] = upstream
    env["BENCH_MASTER_KEY"] = MASTER_KEY
    env["PYTHONUNBUFFERED"] = "1"
    return env


def uvicorn_spec(name: str, app: str, port: int, env: dict[str, str], placement: Placement) -> ServerSpec:
    """A reference app (floor / bare Router) under the same uvicorn settings."""
    argv = [PYTHON, "-m", "uvicorn", app, "--host", HOST, "--port", str(port), *UVICORN_FLAGS]
    return ServerSpec(name, argv, port, env, REPO_ROOT, start_cpus=set(placement.all_cpus))


def routeiq_command() -> list[str]:
    """The console script if installed, else ``python -m routeiq``."""
    script = Path(PYTHON).parent / "routeiq"
    return [str(script)] if script.exists() else [PYTHON, "-m", "routeiq"]


def routeiq_serve_flags(command: list[str], env: dict[str, str]) -> list[str]:
    """Ask ``serve --help`` (which must not import litellm) for flags that pin the setup to ours."""
    try:
        done = subprocess.run(
            [*command, "serve", "--help"], env=env, capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    flags = []
    if "--workers" in done.stdout:
        flags += ["--workers", "1"]
    if "--no-access-log" in done.stdout:
        flags.append("--no-access-log")
    return flags


def routeiq_spec(
    name: str,
    scenario: Scenario,
    ports: tuple[int, int],
    env: dict[str, str],
    workdir: Path,
    placement: Placement,
    flags: list[str],
) -> ServerSpec:
    """``routeiq serve`` in its own working directory (its embedded SQLite must not be shared).

    ``ports`` is (the server's, the mock's); the config (and the policy file it names) is written
    into ``workdir``.
    """
    port, mock_port = ports
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yaml"
    config.write_text(governed.config_yaml(scenario, mock_port, env.get("BENCH_REDIS_URL", "")))
    if scenario.policy:
        (workdir / "policy.yaml").write_text(governed.POLICY_YAML)
    argv = [*routeiq_command(), "serve", "--config", str(config), "--host", HOST, "--port", str(port), *flags]
    return ServerSpec(name, argv, port, env, workdir, start_cpus=set(placement.all_cpus))


@dataclasses.dataclass
class Bench:
    """The run: settings, placement, mock, targets and the subprocesses to clean up."""

    settings: Settings
    placement: Placement
    workdir: Path
    mock: ServerProcess | None = None
    targets: list[Target] = dataclasses.field(default_factory=list)
    started: float = dataclasses.field(default_factory=time.monotonic)
    redis: RedisDb | None = None  # None: no Redis scenario selected, or Redis unreachable
    extra_servers: list[ServerProcess] = dataclasses.field(default_factory=list)  # scaling phase
    findings: dict[str, Any] = dataclasses.field(default_factory=dict)  # scaling, soak
    moderation_rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # guardrail table

    @property
    def mock_port(self) -> int:
        """The mock's port."""
        assert self.mock is not None
        return self.mock.spec.port

    def log(self, message: str) -> None:
        """Progress on stderr, time-stamped from the start of the run."""
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)

    def servers(self) -> Iterator[ServerProcess]:
        """Every subprocess started so far (for cleanup)."""
        if self.mock is not None:
            yield self.mock
        yield from (target.server for target in self.targets if target.server is not None)
        yield from self.extra_servers

    def stop_all(self) -> None:
        """Stop every subprocess this run started (by process group id)."""
        for server in self.servers():
            server.stop()


# Start-up ----------------------------------------------------------------------------------
async def start_mock(bench: Bench) -> None:
    """The upstream everyone talks to; without it nothing can be measured."""
    port = free_port()
    argv = [PYTHON, "-m", "benchmarks.mock_upstream", "--host", HOST, "--port", str(port)]
    argv += ["--chunks", str(bench.settings.chunks), "--chunk-delay-ms", str(bench.settings.chunk_delay_ms)]
    spec = ServerSpec("mock", argv, port, base_env(""), REPO_ROOT, start_cpus=set(bench.placement.client))
    bench.mock = ServerProcess(spec, bench.workdir)
    bench.mock.start()
    if not await bench.mock.wait_ready(15):
        raise HarnessError(f"mock upstream did not start:\n{bench.mock.log_tail()}")


def build_targets(bench: Bench) -> None:
    """Create (but do not start) every selected target, in report order."""
    assert bench.mock is not None
    env = base_env(f"http://{HOST}:{bench.mock_port}")
    direct = Target(TargetResult("direct", LABELS["direct"]), bench.mock_port, pid=bench.mock.pid)
    bench.targets = [direct, *reference_targets(bench, env), *routeiq_targets(bench, env)]
    bench.targets.sort(key=lambda target: list(LABELS).index(target.key))
    for target in bench.targets:
        target.result.command = (target.server or bench.mock).spec.argv


def reference_targets(bench: Bench, env: dict[str, str]) -> list[Target]:
    """The floor and the bare Router app, both under plain uvicorn."""
    apps = {"floor": "benchmarks.floor_app:app", "bare_router": "benchmarks.bare_router_app:app"}
    targets = []
    for key, app in apps.items():
        if key in bench.settings.targets:
            spec = uvicorn_spec(key, app, free_port(), env, bench.placement)
            server = ServerProcess(spec, bench.workdir)
            targets.append(Target(TargetResult(key, LABELS[key]), spec.port, server))
    return targets


def routeiq_env(env: dict[str, str], redis_url: str) -> dict[str, str]:
    """What every RouteIQ server gets on top of the shared environment: its keys and Redis."""
    return {
        **env,
        "ROUTEIQ_MASTER_KEY": MASTER_KEY,
        "ROUTEIQ_ADMIN_KEYS": governed.ADMIN_KEY,
        "BENCH_REDIS_URL": redis_url,
    }


def routeiq_targets(bench: Bench, env: dict[str, str]) -> list[Target]:
    """The governed scenarios (the passthrough is the first), the Anthropic-wire passthrough and the
    LiteLLM executor (``ROUTEIQ_PASSTHROUGH=off``), both with nothing configured."""
    plain = governed.BY_KEY["routeiq_passthrough"]
    scenarios = {
        **governed.BY_KEY,
        "routeiq_messages": dataclasses.replace(plain, key="routeiq_messages", wire="anthropic", limit=None),
        "routeiq_litellm": dataclasses.replace(plain, key="routeiq_litellm"),
    }
    keys = [key for key in scenarios if key in bench.settings.targets]
    if not keys:
        return []
    base = routeiq_env(env, bench.settings.redis_url)
    flags = routeiq_serve_flags(routeiq_command(), base)
    targets = []
    for key in keys:
        key_env = {**base, "ROUTEIQ_PASSTHROUGH": "off"} if key == "routeiq_litellm" else base
        key_env = {**key_env, **governed.scenario_env(scenarios[key], bench.mock_port)}
        spec = routeiq_spec(
            key,
            scenarios[key],
            (free_port(), bench.mock_port),
            key_env,
            bench.workdir / key,
            bench.placement,
            flags,
        )
        server = ServerProcess(spec, bench.workdir)
        result = TargetResult(key, LABELS[key])
        target = Target(result, spec.port, server, ready_timeout=bench.settings.ready_timeout)
        target.scenario = scenarios[key]
        if key == "routeiq_messages":
            target.path, target.payload = MESSAGES_PATH, dict(MESSAGES_PAYLOAD)
            target.auth_headers = dict(MESSAGES_HEADERS)
        targets.append(target)
    return targets


async def start_targets(bench: Bench) -> None:
    """Start all servers at once (start-up may use every core), wait, then pin them."""
    servers = [
        target for target in bench.targets if target.server is not None and target.result.status == "pending"
    ]
    for target in servers:
        assert target.server is not None
        target.server.start()
    ready = await asyncio.gather(*(t.server.wait_ready(t.ready_timeout) for t in servers if t.server))
    for target, ok in zip(servers, ready, strict=True):
        assert target.server is not None
        if ok:
            target.pid = target.server.pid
            target.result.status = "ok"
            continue
        target.result.status = "unavailable"
        reason = "exited" if not target.server.alive() else f"not ready within {target.ready_timeout:.0f}s"
        target.result.note = f"server {reason}; log: {target.server.log_path}"
        bench.log(f"{target.result.label} unavailable ({reason}); last output:\n{target.server.log_tail()}")
        target.server.stop()
    bench.targets[0].result.status = "ok"
    floor = next(target for target in bench.targets if target.key == "floor")
    if floor.result.status != "ok":
        raise HarnessError("the floor app did not start; ratios cannot be computed")
    pin_servers(bench)


async def open_redis(bench: Bench) -> None:
    """Connect to the benchmark's Redis database; without it the Redis scenarios cannot run."""
    redis_targets = [target for target in bench.targets if target.uses_redis]
    if not redis_targets:
        return
    redis = RedisDb(bench.settings.redis_url)
    reason = await redis.open()
    if reason is None:
        bench.redis = redis
        await redis.flush()
        return
    await redis.close()
    bench.log(f"{reason}: the Redis scenarios are not measured")
    for target in redis_targets:
        target.result.status = "unavailable"
        target.result.note = reason


async def issue_virtual_key(target: Target) -> None:
    """Create the scenario's virtual key through the admin API; its secret is the target's credential."""
    status, body = await http_request(
        HOST,
        target.port,
        "POST",
        "/admin/keys",
        governed.key_request(),
        limit_s=10.0,
        headers=governed.admin_headers(),
    )
    target.auth_headers = {"authorization": f"Bearer {governed.issued_secret(status, body)}"}


async def issue_virtual_keys(bench: Bench) -> None:
    """Every virtual-key scenario gets its key; one that cannot is reported unavailable."""
    for target in usable(bench):
        if target.scenario is None or not target.scenario.virtual_key:
            continue
        try:
            await issue_virtual_key(target)
        except ValueError as exc:
            target.result.status = "unavailable"
            target.result.note = f"no virtual key: {exc}"
            bench.log(f"{target.result.label}: {target.result.note}")


def pin_servers(bench: Bench) -> None:
    """Pin every ready server tree to the server core (re-applied before each phase)."""
    if not bench.placement.pinned:
        return
    for target in bench.targets:
        if target.server is not None and target.pid is not None and target.result.usable:
            procstat.pin_tree(target.pid, set(bench.placement.server))


# Measurement ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Measured:
    """One load run plus the server-side CPU and upstream calls it caused."""

    load: LoadResult
    cpu_s: float
    wall_s: float
    upstream_calls: int


async def mock_completions(bench: Bench) -> int:
    """How many completions the mock has served (to check that gateways really forwarded)."""
    status, body = await http_request(HOST, bench.mock_port, "GET", "/_bench/stats", b"")
    return int(orjson.loads(body)["completions"]) if status == 200 else 0


async def measure(
    bench: Bench, target: Target, *, stream: bool, concurrency: int, duration: float
) -> Measured:
    """Run load against a target while reading its process tree's CPU time before and after."""
    assert target.pid is not None
    payload = {**target.payload, "stream": True} if stream else target.payload
    request = build_request(target.endpoint, payload, target.auth_headers)
    if target.uses_redis and bench.redis is not None:
        await bench.redis.flush()  # counters from zero: no limit is reached, no window inherits state
    calls_before = await mock_completions(bench)
    cpu_before, wall_before = procstat.tree_cpu_seconds(target.pid), time.perf_counter()
    load = await run_load(
        target.endpoint,
        request,
        concurrency=concurrency,
        duration=duration,
        warmup=bench.settings.warmup,
        stream=stream,
        request_timeout=bench.settings.request_timeout,
    )
    cpu = procstat.tree_cpu_seconds(target.pid) - cpu_before
    wall = time.perf_counter() - wall_before
    calls = await mock_completions(bench) - calls_before
    return Measured(load, cpu, wall, calls)


def _per(numerator: float, denominator: int, scale: float) -> float | None:
    return numerator / denominator * scale if denominator else None


async def phase_latency(bench: Bench, target: Target) -> Measured:
    """Concurrency 1, zero-delay upstream: the added latency of one request."""
    measured = await measure(bench, target, stream=False, concurrency=1, duration=bench.settings.short)
    load = measured.load
    target.result.add("c1_p50_ms", percentile(load.latencies_ms, 50))
    target.result.add("c1_p99_ms", percentile(load.latencies_ms, 99))
    target.result.add("c1_overhead_hdr_ms", percentile(load.overheads_ms, 50))
    return measured


async def phase_saturation(bench: Bench, target: Target) -> Measured:
    """High concurrency: requests per second one core sustains, and CPU per request."""
    settings = bench.settings
    measured = await measure(
        bench, target, stream=False, concurrency=settings.concurrency, duration=settings.duration
    )
    load = measured.load
    if load.completed:
        target.result.add("sat_rps", load.rps)
    target.result.add("sat_cpu_ms_per_req", _per(measured.cpu_s, load.all_completed, 1000))
    target.result.add("sat_cpu_util", measured.cpu_s / measured.wall_s if measured.wall_s else None)
    target.result.add(
        "sat_upstream_per_req", measured.upstream_calls / load.all_completed if load.all_completed else None
    )
    return measured


async def phase_ttft(bench: Bench, target: Target) -> Measured:
    """Concurrency 1, mock streaming N paced chunks: time to the first streamed byte."""
    measured = await measure(bench, target, stream=True, concurrency=1, duration=bench.settings.short)
    target.result.add("ttft_p50_ms", percentile(measured.load.ttfts_ms, 50))
    target.result.add("ttft_p99_ms", percentile(measured.load.ttfts_ms, 99))
    return measured


async def phase_stream_cpu(bench: Bench, target: Target) -> Measured:
    """Many concurrent streams: server CPU time per chunk delivered to clients."""
    settings = bench.settings
    measured = await measure(
        bench, target, stream=True, concurrency=settings.stream_concurrency, duration=settings.short
    )
    load = measured.load
    target.result.add("stream_cpu_us_per_chunk", _per(measured.cpu_s, load.all_chunks, 1e6))
    target.result.add("stream_chunks_per_s", load.chunks / load.window_s if load.window_s else None)
    return measured


PHASES = {
    "latency": phase_latency,
    "saturation": phase_saturation,
    "ttft": phase_ttft,
    "stream_cpu": phase_stream_cpu,
}


async def warm_up(bench: Bench) -> None:
    """First requests pay lazy start-up costs (connection pools, LiteLLM's first call): not measured."""
    for target in usable(bench):
        for stream in (False, True):
            payload = {**target.payload, "stream": stream}
            request = build_request(target.endpoint, payload, target.auth_headers)
            load = await run_load(
                target.endpoint, request, concurrency=4, duration=bench.settings.warmup, stream=stream
            )
            target.result.add_errors("warmup", dict(load.errors))


def usable(bench: Bench) -> list[Target]:
    """Targets still worth measuring."""
    return [target for target in bench.targets if target.result.usable]


def check_alive(bench: Bench, target: Target) -> None:
    """A server that died mid-run is reported as crashed, with its last output."""
    if target.server is not None and not target.server.alive():
        target.result.status = "crashed"
        target.result.note = f"server exited during the run; log: {target.server.log_path}"
        bench.log(f"{target.result.label} crashed; last output:\n{target.server.log_tail()}")


async def run_rounds(bench: Bench) -> None:
    """Phase by phase, target by target (interleaved), for the configured number of rounds."""
    for round_no in range(1, bench.settings.rounds + 1):
        for phase_name, phase in PHASES.items():
            for target in usable(bench):
                if bench.mock is None or not bench.mock.alive():
                    raise HarnessError("the mock upstream died during the run")
                pin_servers(bench)
                measured = await phase(bench, target)
                target.result.add_errors(phase_name, dict(measured.load.errors))
                check_alive(bench, target)
                bench.log(f"round {round_no} {phase_name:<10} {target.result.label:<22} {describe(measured)}")


def describe(measured: Measured) -> str:
    """A one-line progress summary of a load run."""
    load = measured.load
    text = f"{load.rps:8.0f} req/s  p50 {percentile(load.latencies_ms, 50) or 0:.3f} ms"
    if load.chunks:
        text += f"  ttft p50 {percentile(load.ttfts_ms, 50) or 0:.3f} ms  chunks {load.chunks}"
    text += f"  cpu {measured.cpu_s:.2f}s"
    return text + (f"  errors {dict(load.errors)}" if load.errors else "")


# After the rounds: scaling and the long governed run -------------------------------------------
def find_target(bench: Bench, key: str) -> Target | None:
    """A target still worth measuring, by key."""
    return next((target for target in usable(bench) if target.key == key), None)


def with_workers(flags: list[str], workers: int) -> list[str]:
    """The same server flags, with ``--workers`` set to ``workers``."""
    out, skip = [], False
    for flag in flags:
        if skip:
            skip = False
            continue
        if flag == "--workers":
            skip = True
            continue
        out.append(flag)
    return [*out, "--workers", str(workers)]


def two_worker_spec(bench: Bench, target: Target) -> ServerSpec:
    """The target's server again, with two workers, on every core."""
    assert target.server is not None
    spec = target.server.spec
    name = f"{target.key}_2w"
    if target.scenario is None:  # the floor, under plain uvicorn
        port = free_port()
        argv = with_workers(spec.argv, 2)
        argv[argv.index("--port") + 1] = str(port)
        return dataclasses.replace(spec, name=name, argv=argv, port=port)
    flags = with_workers(routeiq_serve_flags(routeiq_command(), spec.env), 2)
    ports = (free_port(), bench.mock_port)
    workdir = bench.workdir / name
    return routeiq_spec(name, target.scenario, ports, spec.env, workdir, bench.placement, flags)


async def unpinned_saturation(bench: Bench, target: Target) -> dict[str, Any]:
    """Saturation with the target's whole tree free to use every core."""
    assert target.pid is not None
    procstat.pin_tree(target.pid, set(bench.placement.all_cpus))
    settings = bench.settings
    measured = await measure(
        bench, target, stream=False, concurrency=settings.concurrency, duration=settings.duration
    )
    load = measured.load
    bench.log(f"scaling    {target.result.label:<22} {describe(measured)}")
    return {
        "rps": load.rps if load.completed else None,
        "cpu_ms_per_req": _per(measured.cpu_s, load.all_completed, 1000),
        "cores_used": measured.cpu_s / measured.wall_s if measured.wall_s else None,
        "errors": dict(load.errors),
    }


async def two_worker_saturation(bench: Bench, target: Target) -> dict[str, Any] | None:
    """Saturation of a two-worker copy of the target, started for this and stopped after it;
    None if it did not start or could not be given its virtual key."""
    spec = two_worker_spec(bench, target)
    server = ServerProcess(spec, bench.workdir)
    bench.extra_servers.append(server)
    copy = Target(TargetResult(spec.name, f"{target.result.label} x2"), spec.port, server)
    copy.scenario = target.scenario
    try:
        server.start()
        if not await server.wait_ready(bench.settings.ready_timeout):
            bench.log(f"{spec.name} did not start; last output:\n{server.log_tail()}")
            return None
        copy.pid = server.pid
        if copy.scenario is not None and copy.scenario.virtual_key:
            await issue_virtual_key(copy)
        # Both workers must have served (lazy start-up costs) before the window: twice the warm-up.
        request = build_request(copy.endpoint, PAYLOAD, copy.auth_headers)
        await run_load(copy.endpoint, request, concurrency=8, duration=2 * bench.settings.warmup)
        return await unpinned_saturation(bench, copy)
    except ValueError as exc:
        bench.log(f"{copy.result.label}: {exc}")
        return None
    finally:
        server.stop()


async def phase_scaling(bench: Bench) -> None:
    """The fully governed configuration (and the floor, for reference) with 1 and 2 workers.

    Both worker counts run on every core, with the mock and the load generator on core 1 as
    always: only the number of workers differs, so the ratio is what a second worker buys here.
    """
    governed_target = find_target(bench, FULLY_GOVERNED)
    if not bench.settings.scaling or governed_target is None:
        return
    scaling: dict[str, Any] = {}
    for target in (find_target(bench, "floor"), governed_target):
        if target is None:
            continue
        row: dict[str, Any] = {"label": target.result.label, "1": await unpinned_saturation(bench, target)}
        row["2"] = await two_worker_saturation(bench, target)
        one, two = row["1"]["rps"], (row["2"] or {}).get("rps")
        row["ratio"] = two / one if one and two else None
        scaling[target.key] = row
    pin_servers(bench)
    bench.findings["scaling"] = scaling


async def phase_soak(bench: Bench) -> None:
    """A long saturation run of the fully governed target, so its RSS is read after real use."""
    target = find_target(bench, FULLY_GOVERNED)
    settings = bench.settings
    if target is None or settings.soak <= 0:
        return
    pin_servers(bench)
    measured = await measure(
        bench, target, stream=False, concurrency=settings.concurrency, duration=settings.soak
    )
    target.result.add_errors("soak", dict(measured.load.errors))
    check_alive(bench, target)
    bench.log(f"soak {settings.soak:g}s  {target.result.label:<22} {describe(measured)}")
    bench.findings["soak"] = {
        "target": target.key,
        "seconds": settings.soak,
        "rps": measured.load.rps,
        "requests": measured.load.all_completed,
        "errors": dict(measured.load.errors),
    }


def record_rss(bench: Bench) -> None:
    """RSS per worker after all the load (the steady-state footprint, not the idle one)."""
    for target in bench.targets:
        if target.pid is not None and target.result.usable:
            target.result.rss_bytes = procstat.worker_rss_bytes(target.pid)


async def measure_moderation(bench: Bench) -> None:
    """The moderation guardrail's cost per KB needs an endpoint: the mock, while it still runs."""
    try:
        bench.moderation_rows = await guardrails.measure_moderation(f"http://{HOST}:{bench.mock_port}")
    except Exception as exc:  # the guardrail table goes on without the row, saying why
        bench.log(f"moderation guardrail not measured: {type(exc).__name__}: {exc}")


# Report --------------------------------------------------------------------------------------
def build_report(bench: Bench) -> dict[str, Any]:
    """The JSON document: meta, per-target metrics and ratios to the floor, verdicts."""
    results = {target.key: target.result for target in bench.targets}
    summary = {key: summarise(result, results["direct"], results["floor"]) for key, result in results.items()}
    settings = dataclasses.asdict(bench.settings)
    settings["json_path"] = str(settings["json_path"]) if settings["json_path"] else None
    return {
        "meta": {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
            "python": platform.python_version(),
            "cpus": sorted(bench.placement.all_cpus),
            "placement": bench.placement.describe(),
            "load_generator": "python asyncio+httptools (benchmarks/loadgen.py)",
            "settings": settings,
            "elapsed_s": round(time.monotonic() - bench.started, 1),
            "note": "best of rounds; ratios are to the floor app measured in the same run",
        },
        "targets": summary,
        "governed": bench.findings,
        "verdicts": evaluate(summary),
    }


def print_report(report: dict[str, Any]) -> None:
    """Table and verdicts on stdout."""
    meta = report["meta"]
    settings = meta["settings"]
    print()
    print(
        f"RouteIQ benchmark — {meta['placement']}; saturation c={settings['concurrency']} "
        f"{settings['duration']:g}s, c=1 and streams {settings['short']:g}s, "
        f"{settings['rounds']} round(s), best round shown; stream = {settings['chunks']} chunks "
        f"@ {settings['chunk_delay_ms']:g} ms"
    )
    print(render_table(report["targets"]))
    print()
    governed_section = render_governed(report["targets"], report["governed"])
    if governed_section:
        print(governed_section)
        print()
    print(render_verdicts(report["verdicts"]))
    print()


def write_json(report: dict[str, Any], path: Path | None) -> None:
    """Persist the report (directory created if needed)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    print(f"JSON written to {path}")


def open_dashboards(bench: Bench) -> list[asyncio.Task[None]]:
    """The admin SSE clients of the scenarios that have them, connected for the whole run."""
    tasks = []
    for target in usable(bench):
        count = target.scenario.dashboards if target.scenario is not None else 0
        if count:
            events = bench.findings.setdefault("dashboard_events", {}).setdefault(target.key, [0] * count)
            tasks += [
                asyncio.create_task(governed.watch_dashboard(HOST, target.port, events, index))
                for index in range(count)
            ]
    return tasks


async def close_dashboards(bench: Bench, tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    broken = [r for r in results if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError)]
    if broken:
        bench.log(f"dashboard streams broke: {broken}")
    if tasks:
        bench.log(f"dashboard metrics events received: {bench.findings.get('dashboard_events')}")


# Entry point ---------------------------------------------------------------------------------
async def run(bench: Bench) -> dict[str, Any]:
    """Start everything, measure, and return the report."""
    await start_mock(bench)
    build_targets(bench)
    bench.log(f"starting {len(bench.targets) - 1} servers ({bench.placement.describe()})")
    await open_redis(bench)
    await start_targets(bench)
    await issue_virtual_keys(bench)
    bench.log("servers ready: " + ", ".join(f"{t.result.label}={t.result.status}" for t in bench.targets))
    dashboards = open_dashboards(bench)
    try:
        await warm_up(bench)
        await run_rounds(bench)
        await phase_scaling(bench)
        await phase_soak(bench)
    finally:
        await close_dashboards(bench, dashboards)
        if bench.redis is not None:
            await bench.redis.close()
    record_rss(bench)
    await measure_moderation(bench)
    return build_report(bench)


def _raise_on_sigterm() -> None:
    """Turn SIGTERM into an exception so ``finally`` stops the subprocesses."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 whenever it ran (whatever the verdicts), 1 if it could not run."""
    settings = parse_args(argv)
    _raise_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="routeiq-bench-"))
    bench = Bench(settings, Placement.detect(), workdir)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        report = asyncio.run(run(bench))
    except HarnessError as exc:
        print(f"benchmark could not run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("benchmark interrupted", file=sys.stderr)
        return 130
    finally:
        bench.stop_all()
    # In-process CPU time; the moderation rows were measured against the mock before it stopped.
    report["guardrails"] = [*guardrails.measure(), *bench.moderation_rows]
    print_report(report)
    print(guardrails.render(report["guardrails"]) + "\n")
    write_json(report, settings.json_path)
    if all(item["status"] == "ok" for item in report["targets"].values()):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"server logs kept in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
