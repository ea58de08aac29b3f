"""Building a strategy by name, with what it needs from the runtime.

The names and descriptions live in ``catalogue.py``; this module turns one into a working strategy.
Importing it stays cheap: the strategy classes are imported only when one is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from routeiq.routing.catalogue import STRATEGIES, strategy_names, strategy_spec

if TYPE_CHECKING:
    from routeiq.routing.load import LoadTracker
    from routeiq.routing.scoring import CentroidScorer, LearnedScorer
    from routeiq.routing.strategy import RoutingStrategy

# name -> description, read-only: what the admin API lists (from the catalogue, not written again here).
DESCRIPTIONS = MappingProxyType({spec.name: spec.description for spec in STRATEGIES})

__all__ = ["DESCRIPTIONS", "StrategyDeps", "create_strategy", "strategy_names"]


@dataclass
class StrategyDeps:
    """What strategies may need, built once per app."""

    centroid: CentroidScorer
    load: LoadTracker
    learned: dict[str, LearnedScorer] = field(default_factory=dict)  # algo -> scorer over its artifact


def create_strategy(name: str, deps: StrategyDeps) -> RoutingStrategy:
    """A new strategy called ``name``; a ``ValueError`` for an unknown name or a missing trained router."""
    from routeiq.routing.cost import CheapestFirst
    from routeiq.routing.llmrouter import CheapestCapable, TierRouting
    from routeiq.routing.load import least_busy, lowest_latency, lowest_usage
    from routeiq.routing.shuffle import WeightedShuffle

    spec = strategy_spec(name)
    if spec.algorithm is not None:
        if spec.algorithm not in deps.learned:
            raise ValueError(spec.missing_artifact())
        return TierRouting(spec, deps.learned[spec.algorithm])
    if name == "simple-shuffle":
        return WeightedShuffle()
    if name == "cost-based-routing":
        return CheapestFirst()
    if name == "least-busy":
        return least_busy(deps.load)
    if name == "latency-based-routing":
        return lowest_latency(deps.load)
    if name == "usage-based-routing-v2":
        return lowest_usage(deps.load)
    if name == "llmrouter-cheapest-capable":
        return CheapestCapable(spec, deps.centroid)
    if name == "llmrouter-centroid":
        return TierRouting(spec, deps.centroid)
    if name == "llmrouter-cascade":
        from routeiq.routing.cascade import CascadeStrategy

        return CascadeStrategy()
    # Reached only if the catalogue gains a name no branch above builds; a unit test builds every name.
    raise ValueError(f"routing strategy {name!r} is catalogued but has no builder")
