"""``simple-shuffle``: a weighted random pick among the healthy candidates."""

from __future__ import annotations

import random
from collections.abc import Sequence

from routeiq.routing.catalogue import strategy_spec
from routeiq.routing.deployments import Deployment
from routeiq.routing.strategy import RoutingChoice, RoutingContext


class WeightedShuffle:
    name = "simple-shuffle"
    description = strategy_spec(name).description

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)

    def choose(self, candidates: Sequence[Deployment], context: RoutingContext) -> RoutingChoice:
        chosen, reason = self.pick(candidates)
        return RoutingChoice(chosen, self.name, reason)

    def pick(self, candidates: Sequence[Deployment]) -> tuple[Deployment, str]:
        if len(candidates) == 1:
            return candidates[0], "only healthy deployment"
        weights = [candidate.weight for candidate in candidates]
        total = sum(weights)
        if total <= 0:
            weights, total = [1.0] * len(candidates), float(len(candidates))
        chosen = self._random.choices(candidates, weights=weights)[0]
        share = chosen.weight / total if chosen.weight > 0 else 1 / len(candidates)
        return chosen, f"weighted pick among {len(candidates)} healthy ({share:.0%} share)"
