"""Per-arm outcome summaries: sufficient statistics the gateway can keep as plain counters.

Every field is a count or a sum, so summaries from many workers and replicas merge by addition
(``merge``), and ``to_counters``/``from_counters`` map them to one flat hash of numbers (Redis
HINCRBY/HINCRBYFLOAT per field). Nothing needs the raw outcomes: means and variances come from
n, sum and sum of squares; rates from successes and n; latency percentiles from a fixed histogram.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np


def _latency_bounds() -> tuple[float, ...]:
    """Upper bucket edges in milliseconds: 1 ms to ~10 minutes, each 10% above the last, so an
    interpolated percentile is within ~5% of the exact one wherever it falls."""
    bounds = [1.0]
    while bounds[-1] < 600_000:
        bounds.append(round(bounds[-1] * 1.1, 6))
    return tuple(bounds)


LATENCY_BOUNDS_MS = _latency_bounds()  # bucket i is [bounds[i-1], bounds[i]); the last bucket is open
BUCKET_LOWER_EDGES = np.array((0.0, *LATENCY_BOUNDS_MS))
BUCKET_UPPER_EDGES = np.array((*LATENCY_BOUNDS_MS, math.inf))


@dataclass(frozen=True, slots=True)
class Moments:
    """n, sum and sum of squares of a numeric outcome (cost per request, a feedback score)."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    @classmethod
    def of(cls, values: Iterable[float]) -> Moments:
        n, total, total_sq = 0, 0.0, 0.0
        for value in map(float, values):
            n, total, total_sq = n + 1, total + value, total_sq + value * value
        return cls(n, total, total_sq)

    def add(self, value: float) -> Moments:
        return Moments(self.n + 1, self.total + value, self.total_sq + value * value)

    def merge(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """The unbiased sample variance (n - 1 in the denominator); NaN below two observations."""
        if self.n < 2:
            return math.nan
        # max(0, ...): rounding can make a constant sample's sum of squares a hair below n * mean^2.
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


@dataclass(frozen=True, slots=True)
class Rate:
    """Successes out of n trials (errors out of requests, thumbs-up out of feedback)."""

    n: int = 0
    successes: int = 0

    def merge(self, other: Rate) -> Rate:
        return Rate(self.n + other.n, self.successes + other.successes)

    @property
    def value(self) -> float:
        return self.successes / self.n if self.n else math.nan


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts of latencies per ``LATENCY_BOUNDS_MS`` bucket (one more bucket for the overflow)."""

    counts: tuple[int, ...] = field(default_factory=lambda: (0,) * (len(LATENCY_BOUNDS_MS) + 1))

    @classmethod
    def of(cls, values_ms: Iterable[float]) -> Histogram:
        counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
        for value in values_ms:
            counts[bucket_index(value)] += 1
        return cls(tuple(counts))

    def add(self, value_ms: float) -> Histogram:
        counts = list(self.counts)
        counts[bucket_index(value_ms)] += 1
        return Histogram(tuple(counts))

    def merge(self, other: Histogram) -> Histogram:
        return Histogram(tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)))

    @property
    def n(self) -> int:
        return sum(self.counts)


def bucket_index(value_ms: float) -> int:
    return bisect.bisect_right(LATENCY_BOUNDS_MS, value_ms)


def bucket_edges(index: int) -> tuple[float, float]:
    """[lower, upper) of a histogram bucket; the first starts at 0, the last is open (inf)."""
    lower = LATENCY_BOUNDS_MS[index - 1] if index > 0 else 0.0
    upper = LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else math.inf
    return lower, upper


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """Everything the statistics read about one arm.

    ``requests``/``errors``: requests the arm served and how many failed (the error rate);
    ``cost``: cost per request in USD; ``feedback``: scores in [0, 1] (thumbs up = 1);
    ``latency``: end-to-end latency in milliseconds. Requests served by a fallback are the wiring's
    to count separately (pass them in or not, consistently for every arm).
    """

    requests: int = 0
    errors: int = 0
    cost: Moments = Moments()
    feedback: Moments = Moments()
    latency: Histogram = field(default_factory=Histogram)

    def merge(self, other: ArmSummary) -> ArmSummary:
        return ArmSummary(
            self.requests + other.requests,
            self.errors + other.errors,
            self.cost.merge(other.cost),
            self.feedback.merge(other.feedback),
            self.latency.merge(other.latency),
        )

    @property
    def error_rate(self) -> Rate:
        return Rate(self.requests, self.errors)

    def to_counters(self) -> dict[str, float]:
        """A flat mapping of field name to number; zero latency buckets are left out."""
        counters: dict[str, float] = {"requests": self.requests, "errors": self.errors}
        for prefix, moments in (("cost", self.cost), ("feedback", self.feedback)):
            counters[f"{prefix}_n"] = moments.n
            counters[f"{prefix}_sum"] = moments.total
            counters[f"{prefix}_sumsq"] = moments.total_sq
        for index, count in enumerate(self.latency.counts):
            if count:
                counters[f"latency_{index}"] = count
        return counters

    @classmethod
    def from_counters(cls, counters: Mapping[str, float | int | str | bytes]) -> ArmSummary:
        """The inverse of ``to_counters``; missing fields are 0, values may be Redis' strings."""

        def number(name: str) -> float:
            value = counters.get(name, 0)
            return float(value.decode() if isinstance(value, bytes) else value)

        latency = [0] * (len(LATENCY_BOUNDS_MS) + 1)
        for index in range(len(latency)):
            latency[index] = int(number(f"latency_{index}"))
        return cls(
            requests=int(number("requests")),
            errors=int(number("errors")),
            cost=Moments(int(number("cost_n")), number("cost_sum"), number("cost_sumsq")),
            feedback=Moments(int(number("feedback_n")), number("feedback_sum"), number("feedback_sumsq")),
            latency=Histogram(tuple(latency)),
        )
