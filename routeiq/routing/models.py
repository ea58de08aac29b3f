"""Load the routing models at startup: the shipped classifier and any trained routers.

A missing or corrupt classifier does not stop the gateway: the status says ``degraded`` with the
reason (readiness shows it), a metric counts every request routed by the fallback rule, and the
tier-aware strategies use the documented length rule instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeiq.routing.load import LoadTracker
from routeiq.routing.registry import StrategyDeps
from routeiq.routing.scoring import CentroidScorer, LearnedScorer
from routeiq.settings import Settings
from routeiq.state.base import StateStore

logger = logging.getLogger("routeiq.routing")


@dataclass
class RoutingModels:
    deps: StrategyDeps
    classifier_status: str  # "ok" or "degraded: <reason>"
    slots: dict[str, Any] = field(default_factory=dict)  # algo -> RouterSlot (hot-swappable artifact)


def load_routing_models(settings: Settings, on_classifier_fallback: Any) -> RoutingModels:
    classifier, status = _load_classifier(settings.classifier_dir)
    centroid = CentroidScorer(classifier, on_fallback=on_classifier_fallback)
    deps = StrategyDeps(centroid=centroid, load=LoadTracker())
    slots: dict[str, Any] = {}
    if settings.learned_routers:
        from routeiq.routing.learned import RouterSlot

        key = settings.router_hmac_key.get_secret_value().encode() if settings.router_hmac_key else None
        for algo, directory in settings.learned_routers.items():
            slot = RouterSlot(hmac_key=key)
            slot.swap_from(Path(directory))  # a bad artifact stops startup with ArtifactError
            slots[algo] = slot
            deps.learned[algo] = LearnedScorer(f"llmrouter-{algo}", slot, centroid)
    return RoutingModels(deps, status, slots)


def _load_classifier(directory: str | None) -> tuple[Any | None, str]:
    try:
        from routeiq.routing.classifier import CentroidClassifier, ClassifierUnavailable
    except ImportError as error:
        return None, f"degraded: classifier package unavailable ({error})"
    try:
        classifier = CentroidClassifier.load(Path(directory)) if directory else CentroidClassifier.load()
    except ClassifierUnavailable as error:
        logger.error("centroid classifier unavailable, routing by the length rule: %s", error)
        return None, f"degraded: {error}"
    return classifier, "ok"


RELOAD_CHANNEL = "routers"


class RouterReloads:
    """Hot-swap trained routers on every worker and replica.

    The worker that takes the admin call loads and verifies the artifact first (so a bad one is
    refused with its reason and nothing changes anywhere); then the others are told to swap too.
    Requests keep flowing throughout: each slot is replaced only by a fully verified router.
    """

    def __init__(self, store: StateStore, slots: dict[str, Any]) -> None:
        self._store = store
        self._slots = slots

    def start(self) -> None:
        self._store.subscribe(RELOAD_CHANNEL, self._on_notice)

    async def reload(self, algo: str, directory: str | None) -> dict[str, Any]:
        slot = self._slots.get(algo)
        if slot is None:
            raise KeyError(algo)
        path = Path(directory) if directory else slot.source
        router = await asyncio.to_thread(slot.swap_from, path)  # raises ArtifactError; old one stays
        await self._store.publish(RELOAD_CHANNEL, {"algo": algo, "path": str(path), "from": os.getpid()})
        return {"algo": algo, "path": str(path), "strategy": router.strategy}

    async def _on_notice(self, message: dict[str, Any]) -> None:
        if message.get("from") == os.getpid():
            return
        slot = self._slots.get(str(message.get("algo")))
        if slot is None:
            return
        try:
            await asyncio.to_thread(slot.swap_from, Path(str(message["path"])))
        except Exception:
            logger.exception("could not load the router artifact announced by another worker")
