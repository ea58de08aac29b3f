"""Aggregate per-round samples, compute ratios to the floor, judge the targets, render table + JSON.

Why best-of-rounds: on a shared machine noise only ever makes a server look slower, so the best
round of each metric is the least noisy estimate of what the code costs. Verdicts are printed,
never raised: wall-clock targets must not fail a build.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

# Metric name -> how rounds are combined (larger-is-better metrics keep the max).
BEST_OF: dict[str, Callable[[list[float]], float]] = {
    "sat_rps": max,
    "sat_cpu_ms_per_req": min,
    "sat_cpu_util": max,
    "sat_upstream_per_req": min,
    "c1_p50_ms": min,
    "c1_p99_ms": min,
    "c1_overhead_hdr_ms": min,
    "ttft_p50_ms": min,
    "ttft_p99_ms": min,
    "stream_cpu_us_per_chunk": min,
    "stream_chunks_per_s": max,
}

MB = 1024 * 1024


@dataclasses.dataclass
class TargetResult:
    """Everything measured for one target across rounds."""

    key: str
    label: str
    status: str = "pending"
    note: str = ""
    samples: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    errors: dict[str, int] = dataclasses.field(default_factory=dict)
    rss_bytes: int | None = None
    command: list[str] = dataclasses.field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Still worth sending load to."""
        return self.status == "ok"

    def add(self, metric: str, value: float | None) -> None:
        """Record one round's value (None = no successful samples this round)."""
        if value is not None:
            self.samples.setdefault(metric, []).append(value)

    def add_errors(self, phase: str, counts: dict[str, int]) -> None:
        """Remember failures per phase and kind, for the table and the JSON."""
        for kind, count in counts.items():
            name = f"{phase}:{kind}"
            self.errors[name] = self.errors.get(name, 0) + count

    def best(self, metric: str) -> float | None:
        """The best-of-rounds value of a metric, or None if never measured."""
        values = self.samples.get(metric)
        return BEST_OF[metric](values) if values else None

    @property
    def rss_mb(self) -> float | None:
        """Resident set size of the worker after the load, in MiB."""
        return self.rss_bytes / MB if self.rss_bytes else None


def _diff(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def _ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None or base == 0 else value / base


def summarise(target: TargetResult, direct: TargetResult, floor: TargetResult) -> dict[str, Any]:
    """One target's JSON object: best-of-rounds metrics, deltas to direct, ratios to the floor."""
    metrics = {name: target.best(name) for name in BEST_OF}
    metrics["rss_mb"] = target.rss_mb
    metrics["sat_cpu_pct"] = None if metrics["sat_cpu_util"] is None else metrics["sat_cpu_util"] * 100
    added = {
        "added_p50_ms": _diff(metrics["c1_p50_ms"], direct.best("c1_p50_ms")),
        "added_p99_ms": _diff(metrics["c1_p99_ms"], direct.best("c1_p99_ms")),
        "ttft_overhead_ms": _diff(metrics["ttft_p50_ms"], direct.best("ttft_p50_ms")),
    }
    floor_added = {
        "added_p50_ms": _diff(floor.best("c1_p50_ms"), direct.best("c1_p50_ms")),
        "ttft_overhead_ms": _diff(floor.best("ttft_p50_ms"), direct.best("ttft_p50_ms")),
    }
    ratios = {
        "sat_rps": _ratio(metrics["sat_rps"], floor.best("sat_rps")),
        "sat_cpu_ms_per_req": _ratio(metrics["sat_cpu_ms_per_req"], floor.best("sat_cpu_ms_per_req")),
        "stream_cpu_us_per_chunk": _ratio(
            metrics["stream_cpu_us_per_chunk"], floor.best("stream_cpu_us_per_chunk")
        ),
        "added_p50_ms": _ratio(added["added_p50_ms"], floor_added["added_p50_ms"]),
        "ttft_overhead_ms": _ratio(added["ttft_overhead_ms"], floor_added["ttft_overhead_ms"]),
        "rss_mb": _ratio(metrics["rss_mb"], floor.rss_mb),
    }
    return {
        "label": target.label,
        "status": target.status,
        "note": target.note,
        "command": target.command,
        "metrics": metrics,
        "vs_direct": added,
        "ratios_to_floor": ratios,
        "rounds": target.samples,
        "errors": target.errors,
    }


@dataclasses.dataclass(frozen=True)
class Check:
    """One performance target from BRIEF.md section 6."""

    name: str
    target: str
    value: Callable[[dict[str, dict[str, Any]]], float | None]
    limit: float
    at_least: bool
    unit: str


def _metric(target: str, section: str, name: str) -> Callable[[dict[str, dict[str, Any]]], float | None]:
    return lambda summary: summary.get(target, {}).get(section, {}).get(name)


def _metric_ratio(name: str, target: str, base: str) -> Callable[[dict[str, dict[str, Any]]], float | None]:
    def ratio(summary: dict[str, dict[str, Any]]) -> float | None:
        return _ratio(_metric(target, "metrics", name)(summary), _metric(base, "metrics", name)(summary))

    return ratio


def _sat_ratio(target: str, base: str) -> Callable[[dict[str, dict[str, Any]]], float | None]:
    return _metric_ratio("sat_rps", target, base)


def _rss_ratio(target: str, base: str) -> Callable[[dict[str, dict[str, Any]]], float | None]:
    return _metric_ratio("rss_mb", target, base)


RP, RL = "routeiq_passthrough", "routeiq_litellm"
CHECKS = [
    Check("passthrough saturation vs floor", RP, _sat_ratio(RP, "floor"), 0.6, True, "x"),
    Check(
        "passthrough added p50 @c=1 vs direct", RP, _metric(RP, "vs_direct", "added_p50_ms"), 1.5, False, "ms"
    ),
    Check(
        "passthrough streaming TTFT overhead",
        RP,
        _metric(RP, "vs_direct", "ttft_overhead_ms"),
        2.0,
        False,
        "ms",
    ),
    Check("LiteLLM executor saturation vs bare Router", RL, _sat_ratio(RL, "bare_router"), 0.9, True, "x"),
    # Memory as a ratio to LiteLLM's own footprint in the same run: RouteIQ may add 30% to it
    # (the app, the classifier, the durable store's engine), whichever executor serves.
    Check("passthrough RSS per worker vs bare Router", RP, _rss_ratio(RP, "bare_router"), 1.3, False, "x"),
    Check(
        "LiteLLM executor RSS per worker vs bare Router", RL, _rss_ratio(RL, "bare_router"), 1.3, False, "x"
    ),
]


def evaluate(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """PASS/FAIL per check; N/A when a target was unavailable or produced no samples."""
    verdicts = []
    for check in CHECKS:
        value = check.value(summary)
        if value is None:
            status = "N/A"
        else:
            passed = value >= check.limit if check.at_least else value <= check.limit
            status = "PASS" if passed else "FAIL"
        verdicts.append(
            {
                "check": check.name,
                "target": check.target,
                "value": value,
                "limit": f"{'>=' if check.at_least else '<='} {check.limit:g}{check.unit}",
                "unit": check.unit,
                "verdict": status,
            }
        )
    return verdicts


# Rendering ----------------------------------------------------------------------------------
COLUMNS: list[tuple[str, str, str, int]] = [
    # header, section, key, decimals
    ("sat req/s", "metrics", "sat_rps", 0),
    ("x floor", "ratios_to_floor", "sat_rps", 2),
    ("core %", "metrics", "sat_cpu_pct", 0),
    ("CPU ms/req", "metrics", "sat_cpu_ms_per_req", 3),
    ("p50 ms", "metrics", "c1_p50_ms", 3),
    ("p99 ms", "metrics", "c1_p99_ms", 3),
    ("+p50 ms", "vs_direct", "added_p50_ms", 3),
    ("+p99 ms", "vs_direct", "added_p99_ms", 3),
    ("TTFT ms", "metrics", "ttft_p50_ms", 3),
    ("+TTFT ms", "vs_direct", "ttft_overhead_ms", 3),
    ("CPU us/chunk", "metrics", "stream_cpu_us_per_chunk", 1),
    ("RSS MB", "metrics", "rss_mb", 0),
    ("hdr ovh ms", "metrics", "c1_overhead_hdr_ms", 3),
]


def _fmt(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


def _cells(item: dict[str, Any]) -> list[str]:
    """A row's formatted values; targets that never ran show none."""
    if item["status"] not in {"ok", "crashed"}:
        return []
    return [_fmt(item[section].get(key), decimals) for _, section, key, decimals in COLUMNS]


def render_table(summary: dict[str, dict[str, Any]]) -> str:
    """Fixed-width table: one row per target, best-of-rounds values, columns sized to fit."""
    rows = {key: _cells(item) for key, item in summary.items()}
    widths = [
        max([len(header), *(len(cells[i]) for cells in rows.values() if cells)]) + 2
        for i, (header, *_) in enumerate(COLUMNS)
    ]
    label_width = max(len(item["label"]) for item in summary.values()) + 2
    status_width = max(len(item["status"]) for item in summary.values()) + 2
    header = f"{'target':<{label_width}}{'status':<{status_width}}"
    header += "".join(f"{column[0]:>{width}}" for column, width in zip(COLUMNS, widths, strict=True))
    lines = [header, "-" * len(header)]
    for key, item in summary.items():
        row = f"{item['label']:<{label_width}}{item['status']:<{status_width}}"
        row += "".join(f"{cell:>{width}}" for cell, width in zip(rows[key], widths, strict=False))
        lines.append(row.rstrip())
        errors = sum(item["errors"].values())
        if item["note"] or errors:
            detail = f"errors {errors}: {_top_errors(item['errors'])}" if errors else ""
            lines.append(f"{'':<{label_width}}-> {'; '.join(filter(None, [item['note'], detail]))}")
    return "\n".join(lines)


def _top_errors(errors: dict[str, int]) -> str:
    ranked = sorted(errors.items(), key=lambda kv: -kv[1])[:4]
    return ", ".join(f"{name} x{count}" for name, count in ranked)


def render_verdicts(verdicts: list[dict[str, Any]]) -> str:
    """One line per target check with its PASS/FAIL/N/A."""
    width = max(len(v["check"]) for v in verdicts) + 2
    lines = [f"{'check':<{width}}{'value':>12}  {'limit':<12}verdict", "-" * (width + 34)]
    for verdict in verdicts:
        value = verdict["value"]
        shown = "-" if value is None else f"{value:.2f}{verdict['unit']}"
        lines.append(f"{verdict['check']:<{width}}{shown:>12}  {verdict['limit']:<12}{verdict['verdict']}")
    return "\n".join(lines)
