"""What the built-in guardrails cost per KB of prompt: ``python -m benchmarks.guardrails``.

Each CPU guardrail (``pii``, ``prompt_injection``, ``content_filter``) scans ordinary prose and
hostile shapes (long words, hex dumps, an IP address every few characters, blank lines) at 64 KB
and at 1 MB, as its plugin runs the scan. The figure is CPU time of this thread per KB (other
processes on a busy machine do not inflate it), best of a few runs; ``1MB/64KB`` compares the two
sizes per KB: 1.0 is linear, 16 would be quadratic.

``moderation`` does not scan: it sends the text to its service. Its row is the gateway's share, the
CPU this process spends per KB in the plugin's ``pre_call`` (reading the texts, encoding the JSON
request, the HTTP round trip, reading the verdict) against the benchmark's mock, which answers
"not flagged" at once; the service's own time is not in it. It needs the mock, so
``make bench`` (``benchmarks.run``) measures it and the stand-alone command does not.
``make bench`` prints this table after the server benchmark.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from routeiq.governance.call import GovernedCall
from routeiq.governance.identity import MASTER
from routeiq.plugins.base import PluginServices
from routeiq.plugins.builtin.content_filter import ContentFilterPlugin, ContentFilterSettings
from routeiq.plugins.builtin.injection import InjectionPlugin, InjectionSettings
from routeiq.plugins.builtin.moderation import ModerationPlugin, ModerationSettings
from routeiq.plugins.builtin.pii import PiiPlugin, PiiSettings
from routeiq.settings import Settings
from routeiq.state.memory import MemoryStateStore

KB = 1024
SIZES = (64 * KB, 1024 * KB)
PROSE = (
    "Dear team, the quarterly report is attached. Revenue grew 12% to 4.2 million, mostly from the "
    "new region; reach Ann at ann.lee@example.com or +1 (555) 123-4567 with questions. The server at "
    "10.20.30.40 was patched on 2024-06-01. Please ignore the draft numbers in section 3.\n\n"
)
SHAPES = {
    "prose": PROSE,
    "long word": "a",
    "hex dump": "0123456789abcdef",
    "ip every 14 chars": "call 10.0.0.1 ",
    "blank lines": "\n",
}


def scans() -> dict[str, Callable[[str], Any]]:
    """Each guardrail's scan of one text, the work its plugin hands to a worker thread."""
    pii = PiiPlugin(PiiSettings())
    injection = InjectionPlugin(InjectionSettings())
    categories = ContentFilterSettings(builtin_categories=["weapons", "malware", "self_harm"])
    content = ContentFilterPlugin(categories)
    return {
        "pii": pii._redact,
        "prompt_injection": lambda text: injection._score_all([text]),
        "content_filter": lambda text: content._first_category([text]),
    }


def _text(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _cpu_seconds(scan: Callable[[str], Any], text: str, runs: int) -> float:
    scan(text[: 4 * KB])  # warm up (first-call costs are not per KB)
    best = float("inf")
    for _ in range(runs):
        started = time.thread_time()
        scan(text)
        best = min(best, time.thread_time() - started)
    return best


def _row(guardrail: str, shape: str, per_kb: list[float]) -> dict[str, Any]:
    return {
        "guardrail": guardrail,
        "shape": shape,
        "us_per_kb_64kb": round(per_kb[0], 1),
        "us_per_kb_1mb": round(per_kb[1], 1),
        "ratio": round(per_kb[1] / per_kb[0], 2) if per_kb[0] else None,
    }


def measure() -> list[dict[str, Any]]:
    """One row per CPU guardrail and shape: µs per KB at each size, and their ratio."""
    rows = []
    for guardrail, scan in scans().items():
        for shape, unit in SHAPES.items():
            per_kb = [
                _cpu_seconds(scan, _text(unit, size), runs=3 if size < 1024 * KB else 1) * 1e6 / (size / KB)
                for size in SIZES
            ]
            rows.append(_row(guardrail, shape, per_kb))
    return rows


def _chat_call(text: str) -> GovernedCall:
    """A chat call carrying ``text`` as its user message, as the plugins layer hands it over."""
    body = {"model": "bench", "messages": [{"role": "user", "content": text}]}
    return GovernedCall(
        identity=MASTER,
        request_id="bench",
        method="POST",
        route="/v1/chat/completions",
        client_ip="127.0.0.1",
        is_model_call=True,
        body=body,
        body_loaded=True,
        kind="chat",
    )


async def _pre_call_cpu_seconds(plugin: ModerationPlugin, call: GovernedCall, runs: int) -> float:
    """Best CPU time of this process over ``runs`` hook calls (aiohttp may use helper threads:
    process time, not thread time; nothing else runs in this process meanwhile)."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        await plugin.pre_call(call)
        best = min(best, time.process_time() - started)
    return best


async def measure_moderation(upstream: str) -> list[dict[str, Any]]:
    """The moderation guardrail's gateway-side CPU per KB, against an OpenAI-style moderations
    endpoint at ``upstream`` (the benchmark's mock)."""
    plugin = ModerationPlugin(
        ModerationSettings(url=f"{upstream}/v1/moderations", max_scan_chars=2 * SIZES[-1])
    )
    rows = []
    async with aiohttp.ClientSession() as http:
        # The plugin only uses ``http``; the rest is what a gateway would lend it, unused here.
        services = PluginServices(
            state=MemoryStateStore(), submit_spend=lambda _record: True, http=http, settings=Settings()
        )
        await plugin.startup(services)
        await plugin.pre_call(_chat_call("warm up the connection"))
        for shape, unit in SHAPES.items():
            per_kb = []
            for size in SIZES:
                call = _chat_call(_text(unit, size))
                seconds = await _pre_call_cpu_seconds(plugin, call, runs=3)
                per_kb.append(seconds * 1e6 / (size / KB))
            rows.append(_row("moderation", shape, per_kb))
        await plugin.shutdown()
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "Guardrail cost (CPU µs per KB of prompt; 1MB/64KB per KB: 1.0 = linear, 16 = quadratic)",
        f"{'guardrail':<18}{'text':<20}{'64 KB':>10}{'1 MB':>10}{'1MB/64KB':>10}",
    ]
    for row in rows:
        lines.append(
            f"{row['guardrail']:<18}{row['shape']:<20}{row['us_per_kb_64kb']:>10.1f}"
            f"{row['us_per_kb_1mb']:>10.1f}{row['ratio']:>10}"
        )
    return "\n".join(lines)


def main() -> int:
    print(render(measure()))
    print("(moderation needs the benchmark's mock: `python -m benchmarks.run` measures it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
