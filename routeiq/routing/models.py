"""Load the routing models at startup: the shipped classifier and any trained routers.

A missing or corrupt classifier does not stop the gateway: the status says ``degraded`` with the
reason (readiness shows it), a metric counts every request routed by the fallback rule, and the
tier-aware strategies use the documented length rule instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeiq.routing.load import LoadTracker
from routeiq.routing.registry import StrategyDeps
from routeiq.routing.scoring import CentroidScorer, LearnedScorer
from routeiq.settings import Settings

logger = logging.getLogger("routeiq.routing")


@dataclass
class RoutingModels:
    deps: StrategyDeps
    classifier_status: str  # "ok" or "degraded: <reason>"
    slots: dict[str, Any] = field(default_factory=dict)  # algo -> RouterSlot (hot-swappable artifact)


def load_routing_models(settings: Settings, on_classifier_fallback: Any) -> RoutingModels:
    classifier, status = _load_classifier()
    centroid = CentroidScorer(classifier, on_fallback=on_classifier_fallback)
    deps = StrategyDeps(centroid=centroid, load=LoadTracker())
    slots: dict[str, Any] = {}
    if settings.learned_routers:
        from routeiq.routing.learned import RouterSlot

        key = settings.router_hmac_key.get_secret_value().encode() if settings.router_hmac_key else None
        for algo, directory in settings.learned_routers.items():
            slots[algo] = RouterSlot.load(Path(directory), hmac_key=key)
            deps.learned[algo] = LearnedScorer(f"llmrouter-{algo}", slots[algo], centroid)
    return RoutingModels(deps, status, slots)


def _load_classifier() -> tuple[Any | None, str]:
    try:
        from routeiq.routing.classifier import CentroidClassifier, ClassifierUnavailable
    except ImportError as error:
        return None, f"degraded: classifier package unavailable ({error})"
    try:
        classifier = CentroidClassifier.load()
    except ClassifierUnavailable as error:
        logger.error("centroid classifier unavailable, routing by the length rule: %s", error)
        return None, f"degraded: {error}"
    return classifier, "ok"
