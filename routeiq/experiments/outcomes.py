"""Each arm's outcomes, counted cluster-wide in the StateStore.

Every worker counts locally and adds its counts to one hash per arm every half second (as
``observability.cluster_stats`` does), so nothing on the request path waits for Redis and every
request is counted exactly once. The hash holds the ``summary.ArmSummary`` counters plus what the
arm table shows besides (errors by class, tokens, the tier mix, thumbs). The StateStore's hash
counters are integers, so sums of money and scores are kept in fixed point (``SCALES``).

Per arm: ``<arm>`` counts every request the arm was assigned (served by it or by a fallback group),
``<arm>:fallback`` the ones a fallback group served (reported separately, so an arm whose own
deployments fail cannot look cheap), ``<arm>:shadow`` a shadow arm's decisions (never served).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from routeiq.experiments.summary import ArmSummary, bucket_index
from routeiq.state.base import StateStore
from routeiq.state.counters import SharedCounters

FLUSH_SECONDS = 0.5
PREFIX = "experiments:"

# Fixed-point scales of the float sums (integer hash counters): cost in 1e-9 USD, its squares in
# 1e-12 USD^2 (64 bits hold 9 million requests of $1 each; a square below 1e-12, a call under a
# micro-dollar, adds nothing worth keeping to a variance), scores in 1e-6.
SCALES = {
    "cost_sum": 1e9,
    "cost_sumsq": 1e12,
    "feedback_sum": 1e6,
    "feedback_sumsq": 1e6,
}


def arm_key(experiment_id: str, arm: str, part: str = "") -> str:
    return f"{PREFIX}{experiment_id}:arm:{arm}{':' + part if part else ''}"


def decode(counters: Mapping[str, int]) -> dict[str, float]:
    """Hash counters to plain numbers (the fixed-point sums back to floats)."""
    return {
        name: value / SCALES[name] if name in SCALES else float(value) for name, value in counters.items()
    }


def summary_of(counters: Mapping[str, int]) -> ArmSummary:
    return ArmSummary.from_counters(decode(counters))


def scaled(name: str, value: float) -> int:
    return round(value * SCALES[name])


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """How one request of an arm ended. ``error``: its class (None: served)."""

    error: str | None
    cost: float | None
    latency_ms: float | None
    tier: str | None
    input_tokens: int
    output_tokens: int


class ArmCounters:
    """This worker's not yet flushed counts, per hash key."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._counters = SharedCounters(store, FLUSH_SECONDS, "experiment counters flush")

    def add(self, key: str, amounts: Mapping[str, int]) -> None:
        self._counters.add(key, amounts)

    def served(self, key: str, outcome: RequestOutcome) -> None:
        """One request of the arm: its error class when it failed; cost, latency, tokens and tier
        when it was served (a failed request has no cost to average)."""
        amounts: Counter[str] = Counter(requests=1)
        if outcome.error is not None:
            amounts["errors"] += 1
            amounts[f"error:{outcome.error}"] += 1
        else:
            if outcome.cost is not None:
                amounts["cost_n"] += 1
                amounts["cost_sum"] += scaled("cost_sum", outcome.cost)
                amounts["cost_sumsq"] += scaled("cost_sumsq", outcome.cost * outcome.cost)
            if outcome.latency_ms is not None:
                amounts[f"latency_{bucket_index(outcome.latency_ms)}"] += 1
            amounts["input_tokens"] += outcome.input_tokens
            amounts["output_tokens"] += outcome.output_tokens
            if outcome.tier:
                amounts[f"tier:{outcome.tier}"] += 1
        self.add(key, amounts)

    async def start(self) -> None:
        await self._counters.start()

    async def close(self) -> None:
        await self._counters.close()

    async def flush(self) -> None:
        await self._counters.flush()

    async def read(self, key: str) -> dict[str, int]:
        """The cluster's counts of ``key`` (this worker's unflushed ones included)."""
        counts = Counter(await self._store.hgetall(key))
        counts.update(self._counters.pending(key))
        return dict(counts)

    async def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._counters.forget(key)
            await self._store.delete(key)
