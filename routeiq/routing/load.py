"""Per-worker load per deployment, and the LiteLLM-style strategies that read it.

``least-busy``, ``latency-based-routing`` and ``usage-based-routing-v2`` keep LiteLLM's names and
ideas, reimplemented on RouteIQ's healthy candidates (a custom strategy on the Router replaces
LiteLLM's own). Their numbers are this worker's view: each worker balances its own traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from routeiq.routing.catalogue import StrategySpec, strategy_spec
from routeiq.routing.deployments import Deployment
from routeiq.routing.strategy import RoutingChoice, RoutingContext

LATENCY_SMOOTHING = 0.2  # weight of the newest observation in the moving average


@dataclass
class LoadTracker:
    in_flight: dict[str, int] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)  # seconds, exponentially smoothed
    tokens: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (minute, tokens in it)

    def started(self, deployment_id: str) -> None:
        self.in_flight[deployment_id] = self.in_flight.get(deployment_id, 0) + 1

    def finished(self, deployment_id: str, seconds: float, tokens: int) -> None:
        self.in_flight[deployment_id] = max(0, self.in_flight.get(deployment_id, 0) - 1)
        previous = self.latency.get(deployment_id)
        smoothed = seconds if previous is None else previous + LATENCY_SMOOTHING * (seconds - previous)
        self.latency[deployment_id] = smoothed
        minute = int(time.time() // 60)
        seen_minute, count = self.tokens.get(deployment_id, (minute, 0))
        self.tokens[deployment_id] = (minute, (count if seen_minute == minute else 0) + tokens)

    def tokens_this_minute(self, deployment_id: str) -> int:
        minute, count = self.tokens.get(deployment_id, (0, 0))
        return count if minute == int(time.time() // 60) else 0


class _LowestBy:
    def __init__(self, spec: StrategySpec, measure: Callable[[Deployment], float], unit: str) -> None:
        self.name = spec.name
        self.description = spec.description
        self._measure = measure
        self._unit = unit

    def choose(self, candidates: Sequence[Deployment], context: RoutingContext) -> RoutingChoice:
        scores = {candidate.id: float(self._measure(candidate)) for candidate in candidates}
        chosen = min(candidates, key=lambda candidate: scores[candidate.id])  # ties: config order
        return RoutingChoice(
            chosen,
            self.name,
            f"lowest {self._unit} ({scores[chosen.id]:g}) of {len(candidates)}",
            scores=scores,
        )


def least_busy(load: LoadTracker) -> _LowestBy:
    return _LowestBy(
        strategy_spec("least-busy"),
        lambda d: load.in_flight.get(d.id, 0),
        "in-flight requests",
    )


def lowest_latency(load: LoadTracker) -> _LowestBy:
    return _LowestBy(
        strategy_spec("latency-based-routing"),
        lambda d: load.latency.get(d.id, 0.0),
        "smoothed latency in seconds",
    )


def lowest_usage(load: LoadTracker) -> _LowestBy:
    return _LowestBy(
        strategy_spec("usage-based-routing-v2"),
        lambda d: load.tokens_this_minute(d.id),
        "tokens this minute",
    )
