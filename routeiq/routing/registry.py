"""The strategies RouteIQ knows, by name, with a one-line description each.

Importing this module stays cheap (settings validation and ``routeiq strategies`` use the names);
``create_strategy`` builds one with what it needs from the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from routeiq.routing.load import LoadTracker
    from routeiq.routing.scoring import CentroidScorer, LearnedScorer
    from routeiq.routing.strategy import RoutingStrategy

LEARNED_ALGOS = ("knn", "svm", "mlp", "mf", "elo")
DEFAULT_STRATEGY = "llmrouter-centroid"

DESCRIPTIONS: dict[str, str] = {
    "simple-shuffle": "Weighted random choice among healthy deployments (litellm_params.weight).",
    "least-busy": "Fewest requests in flight on this worker.",
    "latency-based-routing": "Lowest recent latency seen by this worker (untried deployments first).",
    "cost-based-routing": "Cheapest healthy deployment per token (model_info costs or LiteLLM's price map).",
    "usage-based-routing-v2": "Fewest tokens used this minute on this worker.",
    "llmrouter-centroid": "Zero-config: the shipped centroid classifier picks the tier.",
    **{
        f"llmrouter-{algo}": f"A trained {algo} router (routeiq train --algo {algo}) picks the tier."
        for algo in LEARNED_ALGOS
    },
    "llmrouter-cheapest-capable": "The cheapest deployment at or above the tier the classifier asks for.",
}


@dataclass
class StrategyDeps:
    """What strategies may need, built once per app."""

    centroid: CentroidScorer
    load: LoadTracker
    learned: dict[str, LearnedScorer] = field(default_factory=dict)  # algo -> scorer over its artifact


def strategy_names() -> list[str]:
    return sorted(DESCRIPTIONS)


def create_strategy(name: str, deps: StrategyDeps) -> RoutingStrategy:
    from routeiq.routing.cost import CheapestFirst
    from routeiq.routing.llmrouter import CheapestCapable, TierRouting
    from routeiq.routing.load import least_busy, lowest_latency, lowest_usage
    from routeiq.routing.shuffle import WeightedShuffle

    if name not in DESCRIPTIONS:
        raise ValueError(f"unknown routing strategy {name!r}; valid: {strategy_names()}")
    description = DESCRIPTIONS[name]
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
    if name == "llmrouter-centroid":
        return TierRouting(name, description, deps.centroid)
    if name == "llmrouter-cheapest-capable":
        return CheapestCapable(name, description, deps.centroid)
    algo = name.removeprefix("llmrouter-")
    if algo not in deps.learned:
        raise ValueError(f"strategy {name} needs a trained router: set routeiq.learned_routers.{algo}")
    return TierRouting(name, description, deps.learned[algo])
