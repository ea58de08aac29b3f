"""The strategies RouteIQ knows, by name. Importing this module must stay cheap (no LiteLLM)."""

from __future__ import annotations

from collections.abc import Callable

from routeiq.routing.cost import CheapestFirst
from routeiq.routing.shuffle import WeightedShuffle
from routeiq.routing.strategy import RoutingStrategy

STRATEGIES: dict[str, tuple[str, Callable[[], RoutingStrategy]]] = {
    WeightedShuffle.name: (WeightedShuffle.description, WeightedShuffle),
    CheapestFirst.name: (CheapestFirst.description, CheapestFirst),
}


def strategy_names() -> list[str]:
    return sorted(STRATEGIES)


def create_strategy(name: str) -> RoutingStrategy:
    try:
        _, factory = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown routing strategy {name!r}; valid: {strategy_names()}") from None
    return factory()
