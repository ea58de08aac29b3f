"""What routing knows by name: the strategies (with a one-line description each), the learned-router
algorithms, and the tier ladder.

This is the one place these names are written. Settings validation, ``routeiq strategies``, the CLI's
choices, the admin API, the strategy factory (``registry.create_strategy``) and the learned-router code
all read it. It imports nothing from RouteIQ, so ``settings.py`` uses it without importing the routing
modules that themselves import the settings, and ``routeiq --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass

# The ladder deployments climb (``model_info.tier``), cheapest first.
TIERS = ("free", "budget", "standard", "premium", "reasoning")

# The algorithms ``routeiq train --algo`` fits; each serves as the strategy ``llmrouter-<algorithm>``.
LEARNED_ALGORITHMS = ("linear", "knn", "svm", "mlp", "mf", "elo", "ensemble")

# ``routeiq train --algo verifier`` fits the answer verifier a cascade asks (not a routing strategy).
ANSWER_VERIFIER = "verifier"
TRAINABLE = (*LEARNED_ALGORITHMS, ANSWER_VERIFIER)

LEARNED_PREFIX = "llmrouter-"
CENTROID_STRATEGY = "llmrouter-centroid"
CASCADE_STRATEGY = "llmrouter-cascade"
DEFAULT_STRATEGY = CENTROID_STRATEGY


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """One strategy as users name it: what it does, and the trained router it needs, if any."""

    name: str
    description: str
    algorithm: str | None = None  # learned: the trained router in ``routeiq.learned_routers.<algorithm>``

    @property
    def needs_artifact(self) -> bool:
        return self.algorithm is not None

    def missing_artifact(self) -> str:
        """Why it cannot be built without its trained router (settings and the factory both say this)."""
        return f"strategy {self.name} needs a trained router: set routeiq.learned_routers.{self.algorithm}"


def learned_strategy_name(algorithm: str) -> str:
    """``knn`` -> ``llmrouter-knn``: the strategy a trained router of that algorithm serves."""
    return f"{LEARNED_PREFIX}{algorithm}"


STRATEGIES: tuple[StrategySpec, ...] = (
    StrategySpec(
        "simple-shuffle", "Weighted random choice among healthy deployments (litellm_params.weight)."
    ),
    StrategySpec("least-busy", "Fewest requests in flight on this worker."),
    StrategySpec(
        "latency-based-routing", "Lowest recent latency seen by this worker (untried deployments first)."
    ),
    StrategySpec(
        "cost-based-routing",
        "Cheapest healthy deployment per token (model_info costs or LiteLLM's price map).",
    ),
    StrategySpec("usage-based-routing-v2", "Fewest tokens used this minute on this worker."),
    StrategySpec(CENTROID_STRATEGY, "Zero-config: the shipped centroid classifier picks the tier."),
    *(
        StrategySpec(
            learned_strategy_name(algorithm),
            f"A trained {algorithm} router (routeiq train --algo {algorithm}) picks the tier.",
            algorithm=algorithm,
        )
        for algorithm in LEARNED_ALGORITHMS
    ),
    StrategySpec(
        "llmrouter-cheapest-capable", "The cheapest deployment at or above the tier the classifier asks for."
    ),
    StrategySpec(
        CASCADE_STRATEGY,
        "The cheapest tier answers first; a verifier escalates weak answers (routeiq.cascades.<group>).",
    ),
)

# The strategies ``routeiq classify`` can run offline: each judges a prompt without any deployment.
CLASSIFIER_STRATEGIES = (CENTROID_STRATEGY, *(learned_strategy_name(a) for a in LEARNED_ALGORITHMS))


def strategy_names() -> list[str]:
    return sorted(spec.name for spec in STRATEGIES)


def find_strategy(name: str) -> StrategySpec | None:
    return next((spec for spec in STRATEGIES if spec.name == name), None)


def strategy_spec(name: str) -> StrategySpec:
    """The strategy called ``name``; a ``ValueError`` lists the valid names."""
    spec = find_strategy(name)
    if spec is None:
        raise ValueError(f"unknown routing strategy {name!r}; valid: {strategy_names()}")
    return spec
