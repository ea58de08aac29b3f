"""Dashboard numbers for the whole cluster, kept in the StateStore: what ``GET /admin/metrics`` shows.

Each worker aggregates the requests it finishes into 10-second buckets in memory (a few dictionary
increments per request, no round trip: ``observe``) and adds them to the shared state once a second.
Every aggregate is a sum, so the buckets of all workers and replicas simply add up:

- requests, errors by class, outcomes, input and output tokens, cost (in nano-USD: counters are
  integers), requests by tier, group, served model and strategy;
- latency and routing overhead as histograms over fixed log-spaced bounds (four per doubling, 19 %
  wide), so percentiles can be read off the merged histogram however many workers added to it.

Buckets live in one hash per minute that expires ten minutes after its last write. ``snapshot`` reads
the last five minutes (six hashes, in parallel) and computes the payload from what is stored only, so
whichever worker answers gives the same counts. While the shared state is unreachable the counts wait
in the worker (bounded to the buckets still worth keeping) and the snapshot covers this worker alone
(``scope: worker``).

Each worker also reports its traffic gate (in flight, queued) once a second; the snapshot sums the
reports of the workers that reported in the last few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routeiq.periodic import every, stop
from routeiq.state.base import StateStore, StateUnavailable

if TYPE_CHECKING:
    from routeiq.governance.call import GovernedCall
    from routeiq.resilience.traffic import TrafficGate
    from routeiq.routing.decision import RequestTrace

logger = logging.getLogger("routeiq.stats")

BUCKET_SECONDS = 10
WINDOW_SECONDS = 60  # rates, percentiles and distributions
SERIES_SECONDS = 300  # the chart series
KEEP_SECONDS = 600  # a minute's hash outlives its last write by this much
FLUSH_SECONDS = 1.0
FINAL_AFTER_SECONDS = 10.0  # a bucket this long past its end holds every worker's flushes
SNAPSHOT_REUSE_SECONDS = 0.5  # dashboards polling one worker at once share one read of the store
GATE_REPORT_STALE_SECONDS = 5.0
MINUTE_KEY = "metrics:minute:{}"
GATES_KEY = "metrics:gates"
NANO_USD = 1e9
# Histogram bucket i holds values in (2^((i-1)/4), 2^(i/4)] milliseconds: 0.001 ms to ~17 min.
STEPS_PER_DOUBLING = 4
MIN_INDEX, MAX_INDEX = -40, 80
MAX_SHAPES_PER_BUCKET = 1000  # distinct (outcome, error, tier, group, model, strategy) per bucket
ERROR_OUTCOMES = frozenset({"failed", "rejected", "shed", "interrupted"})
DIMENSIONS = ("tier", "group", "model", "strategy")


def histogram_index(milliseconds: float) -> int:
    if milliseconds <= 0:
        return MIN_INDEX
    index = math.ceil(math.log2(milliseconds) * STEPS_PER_DOUBLING)
    return max(MIN_INDEX, min(MAX_INDEX, index))


def histogram_value(index: int) -> float:
    """What a bucket stands for: the geometric middle of its bounds."""
    return float(2 ** ((index - 0.5) / STEPS_PER_DOUBLING))


def percentile(histogram: dict[int, int], quantile: float) -> float | None:
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = quantile * total
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return round(histogram_value(index), 3)
    return round(histogram_value(max(histogram)), 3)


def bucket_start(at: float) -> int:
    return int(at // BUCKET_SECONDS) * BUCKET_SECONDS


# What one request is counted under: outcome, error class, tier, group, served model, strategy.
Shape = tuple[str, str | None, str | None, str | None, str | None, str | None]
OTHER_SHAPE: Shape = ("other", None, None, None, None, None)
SHAPE_DIMENSIONS = ("out", "errc", "tier", "group", "model", "strategy")


class _Bucket:
    """One 10-second bucket of this worker's requests, not yet added to the shared state: a count
    per request shape and the histograms, turned into the shared hash's fields once a second."""

    __slots__ = ("cost_usd", "input_tokens", "latency", "output_tokens", "overhead", "shapes")

    def __init__(self) -> None:
        self.shapes: dict[Shape, int] = {}
        self.latency: dict[int, int] = {}
        self.overhead: dict[int, int] = {}
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd = 0.0

    def counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for shape, count in self.shapes.items():
            counts["req"] += count
            if shape[1] is not None:
                counts["err"] += count
            for dimension, value in zip(SHAPE_DIMENSIONS, shape, strict=True):
                if value is not None:
                    counts[f"{dimension}:{value}"] += count
        for kind, histogram in (("lat", self.latency), ("ovh", self.overhead)):
            for index, count in histogram.items():
                counts[f"{kind}:{index}"] += count
        if self.input_tokens:
            counts["tin"] = self.input_tokens
        if self.output_tokens:
            counts["tout"] = self.output_tokens
        if self.cost_usd:
            counts["cost"] = round(self.cost_usd * NANO_USD)
        return counts

    def fields(self, start: int) -> dict[str, int]:
        return {f"{start}|{name}": value for name, value in self.counts().items()}

    def merge(self, other: _Bucket) -> None:
        for shape, count in other.shapes.items():
            self.shapes[shape] = self.shapes.get(shape, 0) + count
        for mine, theirs in ((self.latency, other.latency), (self.overhead, other.overhead)):
            for index, count in theirs.items():
                mine[index] = mine.get(index, 0) + count
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd


class ClusterMetrics:
    def __init__(
        self,
        store: StateStore,
        gate: TrafficGate,
        instance_id: str,
        *,
        shared: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``shared``: the store is what every process of the deployment reads (Redis, or the memory
        store of a single worker); otherwise every snapshot says it covers this worker only."""
        self._store = store
        self._gate = gate
        self._instance_id = instance_id
        self._shared = shared
        self._clock = clock
        self._pending: dict[int, _Bucket] = {}
        self._task: asyncio.Task[None] | None = None
        self._snapshot_lock = asyncio.Lock()
        self._last_snapshot: tuple[float, dict[str, Any]] | None = None  # (monotonic time, payload)
        # Buckets read once every worker had flushed into them: not read again (bucket start -> counts).
        self._final: dict[int, Counter[str]] = {}

    # --- the request path ---

    def observe(
        self,
        trace: RequestTrace,
        call: GovernedCall | None,
        status: int,
        outcome: str,
        error_code: str | None,
        latency_seconds: float | None,
    ) -> None:
        """One finished model request, as the ledger closes it."""
        start = bucket_start(self._clock())
        bucket = self._pending.get(start)
        if bucket is None:
            bucket = self._pending[start] = _Bucket()
        error = (error_code or f"http_{status}") if outcome in ERROR_OUTCOMES else None
        decision = trace.decision
        if decision is None:
            shape: Shape = (outcome, error, None, trace.group, None, trace.strategy)
        else:
            deployment = decision.deployment
            # The gateway's own time before the answer (x-routeiq-overhead-ms) when one came; else
            # the time spent choosing.
            overhead = trace.overhead_ms if trace.overhead_ms is not None else trace.routing_seconds * 1000
            index = histogram_index(overhead)
            bucket.overhead[index] = bucket.overhead.get(index, 0) + 1
            if trace.served:
                tier = decision.tier or deployment.tier or "none"
                shape = (outcome, error, tier, deployment.group, deployment.upstream_model, decision.strategy)
            else:
                shape = (outcome, error, None, trace.group, None, decision.strategy)
        shapes = bucket.shapes
        if shape not in shapes and len(shapes) >= MAX_SHAPES_PER_BUCKET:
            shape = OTHER_SHAPE  # bounded, whatever labels arrive
        shapes[shape] = shapes.get(shape, 0) + 1
        if latency_seconds is not None:
            index = histogram_index(latency_seconds * 1000)
            bucket.latency[index] = bucket.latency.get(index, 0) + 1
        if call is not None and call.served is not None:
            usage = call.usage
            if usage:
                prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
                bucket.input_tokens += prompt if isinstance(prompt, int) else 0
                bucket.output_tokens += completion if isinstance(completion, int) else 0
            bucket.cost_usd += call.cost_usd or 0.0

    # --- flushing ---

    async def start(self) -> None:
        self._task = every(FLUSH_SECONDS, self.flush, "metrics flush")

    async def close(self) -> None:
        if self._task is not None:
            await stop([self._task])
        with contextlib.suppress(Exception):
            await self.flush()
        with contextlib.suppress(Exception):
            await self._store.delete_entries(GATES_KEY, [self._instance_id])

    async def flush(self) -> None:
        """Add the pending buckets to the shared state (kept for the next try if it is away), and
        report this worker's gate."""
        now = self._clock()
        horizon = now - KEEP_SECONDS
        pending, self._pending = self._pending, {}
        by_minute: dict[int, dict[str, int]] = {}
        for start, bucket in pending.items():
            if start < horizon:
                continue  # too old to show any more: dropped rather than kept forever
            by_minute.setdefault(start // 60 * 60, {}).update(bucket.fields(start))
        try:
            for minute, fields in by_minute.items():
                if fields:
                    await self._store.hincr(MINUTE_KEY.format(minute), fields, KEEP_SECONDS)
                    for start in [s for s in pending if s // 60 * 60 == minute]:
                        del pending[start]
        except StateUnavailable:
            self._final.clear()  # these counts will land late, in buckets perhaps thought final
            raise
        finally:
            for start, bucket in pending.items():  # not added: merge back with what came meanwhile
                if start >= horizon:
                    self._merge_back(start, bucket)
        report = {"in_flight": self._gate.in_flight, "queue_depth": self._gate.queue_depth, "seen": now}
        await self._store.put_entry(GATES_KEY, self._instance_id, report)

    def _merge_back(self, start: int, bucket: _Bucket) -> None:
        current = self._pending.get(start)
        if current is None:
            self._pending[start] = bucket
        else:
            current.merge(bucket)

    # --- reading ---

    async def shared_snapshot(self) -> dict[str, Any]:
        """``snapshot``, reused for ``SNAPSHOT_REUSE_SECONDS``: however many streams and pollers this
        worker serves, it reads the store at most twice a second for them (a shallow copy each)."""
        async with self._snapshot_lock:
            last = self._last_snapshot
            if last is not None and time.monotonic() - last[0] < SNAPSHOT_REUSE_SECONDS:
                return dict(last[1])
            payload = await self.snapshot()
            self._last_snapshot = (time.monotonic(), payload)
            return dict(payload)

    async def snapshot(self) -> dict[str, Any]:
        """The dashboard payload (``GET /admin/metrics``) from the last minute and five minutes."""
        now = self._clock()
        current = bucket_start(now)
        first = current - SERIES_SECONDS + BUCKET_SECONDS
        scope = "cluster" if self._shared else "worker"
        try:
            buckets = await self._stored_buckets(first, current, now)
            gates = await self._gate_totals(now)
        except StateUnavailable:
            self._final.clear()  # counts held back meanwhile will land in buckets thought final
            scope = "worker"
            buckets = self._pending_buckets(first)
            gates = {"in_flight": self._gate.in_flight, "queue_depth": self._gate.queue_depth}
        window_first = current - WINDOW_SECONDS + BUCKET_SECONDS
        window: Counter[str] = Counter()
        for start, counts in buckets.items():
            if start >= window_first:
                window.update(counts)
        covered = max(now - window_first, 1.0)
        requests = window["req"]
        latency = _histogram(window, "lat")
        overhead = _histogram(window, "ovh")
        return {
            "generated_at": now,
            "window_seconds": WINDOW_SECONDS,
            "scope": scope,
            "requests_total": requests,
            "requests_per_second": round(requests / covered, 4),
            "error_rate": round(window["err"] / requests, 4) if requests else 0.0,
            "errors_by_class": _labelled(window, "errc"),
            "by_outcome": _labelled(window, "out"),
            "latency_ms": _percentiles(latency),
            "routing_overhead_ms": _percentiles(overhead),
            "tokens_per_minute": {
                "input": round(window["tin"] * 60 / covered, 3),
                "output": round(window["tout"] * 60 / covered, 3),
            },
            "cost_usd_per_minute": round(window["cost"] / NANO_USD * 60 / covered, 9),
            **{f"by_{dimension}": _labelled(window, dimension) for dimension in DIMENSIONS},
            "queue_depth": gates["queue_depth"],
            "in_flight": gates["in_flight"],
            "series": [
                _series_point(start, buckets.get(start, Counter()))
                for start in range(first, current + 1, BUCKET_SECONDS)
            ],
        }

    async def _stored_buckets(self, first: int, last: int, now: float) -> dict[int, Counter[str]]:
        """The buckets from ``first`` to ``last``: final ones from this worker's copy, the minutes
        holding any other read from the store."""
        final_until = now - BUCKET_SECONDS - FINAL_AFTER_SECONDS  # buckets starting before are final
        self._final = {start: counts for start, counts in self._final.items() if start >= first}
        starts = range(first, last + 1, BUCKET_SECONDS)
        minutes = sorted({start // 60 * 60 for start in starts if start not in self._final})
        hashes = await asyncio.gather(*(self._store.hgetall(MINUTE_KEY.format(m)) for m in minutes))
        read: dict[int, Counter[str]] = {}
        for stored in hashes:
            for field, value in stored.items():
                start_text, _, name = field.partition("|")
                start = int(start_text)
                if first <= start <= last and start not in self._final:
                    read.setdefault(start, Counter())[name] += int(value)
        for start in starts:
            if start not in self._final and start // 60 * 60 in minutes and start < final_until:
                self._final[start] = read.get(start, Counter())
        return {**read, **self._final}

    def _pending_buckets(self, first: int) -> dict[int, Counter[str]]:
        buckets: dict[int, Counter[str]] = {}
        for start, bucket in self._pending.items():
            if start >= first:
                buckets[start] = bucket.counts()
        return buckets

    async def _gate_totals(self, now: float) -> dict[str, int]:
        reports = await self._store.entries(GATES_KEY)
        totals = {"in_flight": 0, "queue_depth": 0}
        stale = []
        for instance, report in reports.items():
            if now - float(report.get("seen", 0)) > GATE_REPORT_STALE_SECONDS:
                stale.append(instance)
                continue
            totals["in_flight"] += int(report.get("in_flight", 0))
            totals["queue_depth"] += int(report.get("queue_depth", 0))
        if stale:
            with contextlib.suppress(StateUnavailable):
                await self._store.delete_entries(GATES_KEY, stale)
        return totals


def _labelled(counts: Counter[str], dimension: str) -> dict[str, int]:
    prefix = dimension + ":"
    found = {name[len(prefix) :]: value for name, value in counts.items() if name.startswith(prefix)}
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def _histogram(counts: Counter[str], kind: str) -> dict[int, int]:
    return {int(index): value for index, value in _labelled(counts, kind).items()}


def _percentiles(histogram: dict[int, int]) -> dict[str, float | None]:
    return {name: percentile(histogram, q) for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}


def _series_point(start: int, counts: Counter[str]) -> dict[str, Any]:
    return {
        "t": start,
        "requests": counts["req"],
        "errors": counts["err"],
        "p95_ms": percentile(_histogram(counts, "lat"), 0.95),
        "cost_usd": round(counts["cost"] / NANO_USD, 9),
        "input_tokens": counts["tin"],
        "output_tokens": counts["tout"],
    }
