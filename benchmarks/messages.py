"""What the Messages API costs the gateway, next to the OpenAI passthrough, in the same run.

``python -m benchmarks.messages`` starts one RouteIQ server (one worker, master key) with two
deployments on one mock upstream (``tests/support/mock_upstream.py``, which speaks both wires): an
OpenAI-wire one (``chat``) and an Anthropic-wire one (``claude``). It then sends the same prompt,
whole and streamed, as

- ``chat``: ``/v1/chat/completions`` to the OpenAI-wire deployment (the OpenAI passthrough),
- ``translated``: ``/v1/messages`` to the OpenAI-wire deployment (translated both ways),
- ``native``: ``/v1/messages`` to the Anthropic-wire deployment (forwarded as bytes),

and reads the gateway's CPU time (``/proc``) around each window. CPU per request is what decides
throughput on a saturated core, so ``native / chat`` is the Anthropic passthrough's cost relative to
the OpenAI passthrough's (the same ratio to the floor when it is 1), and for streams the CPU per
upstream chunk says what translation adds per chunk (the target: at most 2x the passthrough's).
Rounds are interleaved, so drift on this shared machine hits every scenario alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.procstat import tree_cpu_seconds
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

MASTER = "sk-bench-master"
PROMPT = "Explain in one paragraph how a write-ahead log makes a database crash-safe."
SCENARIOS = ("chat", "translated", "native")


@dataclass
class Sample:
    cpu_ms_per_request: list[float] = field(default_factory=list)
    events_per_request: float = 0.0


def _config(api_base: str) -> dict[str, Any]:
    claude = {
        "model_name": "claude",
        "litellm_params": {"model": "anthropic/claude-bench", "api_base": api_base, "api_key": "sk-upstream"},
    }
    return {
        "model_list": [deployment("chat", "mock-bench", api_base), claude],
        "router_settings": {"num_retries": 0},
        "routeiq": {"max_concurrent_requests": 10000, "decision_log": "off"},
    }


def _request(scenario: str, stream: bool) -> tuple[str, dict[str, Any]]:
    messages = [{"role": "user", "content": PROMPT}]
    if scenario == "chat":
        body: dict[str, Any] = {"model": "chat", "messages": messages, "stream": stream}
        return "/v1/chat/completions", body
    model = "chat" if scenario == "translated" else "claude"
    return "/v1/messages", {"model": model, "max_tokens": 256, "messages": messages, "stream": stream}


async def _one(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> int:
    """Sends one request; returns the number of SSE events received (1 for a whole answer)."""
    if not body["stream"]:
        response = await client.post(path, json=body)
        response.raise_for_status()
        return 1
    events = 0
    async with client.stream("POST", path, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            events += line.startswith("data:")
    return events


async def _window(
    url: str, pid: int, scenario: str, stream: bool, requests: int, concurrency: int
) -> tuple[float, float]:
    """(gateway CPU ms per request, events per request) over ``requests`` calls."""
    path, body = _request(scenario, stream)
    headers = {"authorization": f"Bearer {MASTER}", "anthropic-version": "2023-06-01"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        await asyncio.gather(*(_one(client, path, body) for _ in range(concurrency)))  # warm
        queue = list(range(requests))
        counts: list[int] = []

        async def worker() -> None:
            while queue:
                queue.pop()
                counts.append(await _one(client, path, body))

        before = tree_cpu_seconds(pid)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        spent = tree_cpu_seconds(pid) - before
    return spent * 1000 / requests, sum(counts) / len(counts)


def _report(results: dict[tuple[str, bool], Sample]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for stream in (False, True):
        kind = "stream" if stream else "whole"
        base = statistics.median(results[("chat", stream)].cpu_ms_per_request)
        for scenario in SCENARIOS:
            sample = results[(scenario, stream)]
            cpu = statistics.median(sample.cpu_ms_per_request)
            table[f"{scenario}_{kind}"] = {
                "cpu_ms_per_request": round(cpu, 3),
                "events_per_request": round(sample.events_per_request, 1),
                "cpu_vs_chat_passthrough": round(cpu / base, 2) if base else None,
            }
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=400, help="requests per scenario and round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    results = {(scenario, stream): Sample() for scenario in SCENARIOS for stream in (False, True)}
    with tempfile.TemporaryDirectory() as tmp, MockUpstream() as upstream:
        env = {"ROUTEIQ_MASTER_KEY": MASTER}
        with Gateway(_config(upstream.base_url), Path(tmp), env) as gateway:
            pid = gateway.process.pid
            for _ in range(args.rounds):
                for key, sample in results.items():
                    scenario, stream = key
                    cpu, events = asyncio.run(
                        _window(gateway.url, pid, scenario, stream, args.requests, args.concurrency)
                    )
                    sample.cpu_ms_per_request.append(cpu)
                    sample.events_per_request = events
                upstream.clear()  # (the mock records every request)
    table = _report(results)
    print(f"{'scenario':<18}{'CPU ms/request':>16}{'events':>8}{'vs chat':>9}")
    for name, row in table.items():
        print(
            f"{name:<18}{row['cpu_ms_per_request']:>16.3f}{row['events_per_request']:>8.1f}{row['cpu_vs_chat_passthrough']:>9.2f}"
        )
    stream_base = table["chat_stream"]["cpu_ms_per_request"]
    added = table["translated_stream"]["cpu_ms_per_request"] - stream_base
    ratio = added / stream_base
    print(f"translation adds {ratio:.2f}x the passthrough's CPU per streamed request (target <= 2)")
    if args.json is not None:
        args.json.write_text(json.dumps({"measured_at": time.time(), "results": table}, indent=2))


if __name__ == "__main__":
    main()
