"""Load the routing models at startup: the shipped classifier and any trained routers.

A missing or corrupt classifier does not stop the gateway: the status says ``degraded`` with the
reason (readiness shows it), a metric counts every request routed by the fallback rule, and the
tier-aware strategies use the documented length rule instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeiq.routing.catalogue import learned_strategy_name
from routeiq.routing.load import LoadTracker
from routeiq.routing.registry import StrategyDeps
from routeiq.routing.scoring import CentroidScorer, LearnedScorer
from routeiq.settings import Settings
from routeiq.state.changes import Change, ChangeRefused, LiveChanges

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
            # The classifier's encoder is the one routers are trained with: loaded once, shared.
            slot = RouterSlot(hmac_key=key, loaded_encoder=classifier.encoder if classifier else None)
            slot.swap_from(Path(directory))  # a bad artifact stops startup with ArtifactError
            slots[algo] = slot
            deps.learned[algo] = LearnedScorer(learned_strategy_name(algo), slot, centroid)
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


ROUTER_SUBJECT = "routing.router."  # + the algorithm: one live-change subject per trained router


def manifest_sha256(directory: Path) -> str:
    """An artifact's identity: its manifest names the sha256 of every other file, so this covers all."""
    from routeiq.routing.learned.artifacts import MANIFEST  # the learned package loads numpy and more

    return hashlib.sha256((directory / MANIFEST).read_bytes()).hexdigest()


class RouterReloads:
    """Hot-swap trained routers on every worker and replica.

    The worker that takes the admin call loads and verifies the artifact first (so a bad one is
    refused with its reason and nothing changes anywhere); then the change (the artifact's path and
    manifest sha256) goes out through the live-change mechanism. Every other process loads exactly
    that artifact: one whose manifest differs, or that is missing on its machine, is refused there,
    and ``GET /admin/changes`` names the instances that could not apply it. Requests keep flowing
    throughout: each slot is replaced only by a fully verified router.
    """

    def __init__(self, changes: LiveChanges, slots: dict[str, Any]) -> None:
        self._changes = changes
        self._slots = slots
        self._loaded = {algo: _identity(slot.source) for algo, slot in slots.items()}
        for algo in slots:
            changes.watch(ROUTER_SUBJECT + algo, self._on_change)

    async def reload(self, algo: str, directory: str | None) -> dict[str, Any]:
        slot = self._slots.get(algo)
        if slot is None:
            raise KeyError(algo)
        path = Path(directory) if directory else slot.source
        sha256 = await asyncio.to_thread(manifest_sha256, path)  # OSError: no artifact there
        router = await asyncio.to_thread(slot.swap_from, path)  # raises ArtifactError; old one stays
        self._loaded[algo] = sha256
        value = {"algo": algo, "path": str(path), "sha256": sha256}
        version = await self._changes.publish(ROUTER_SUBJECT + algo, value, local_if_unavailable=True)
        return {
            "algo": algo,
            "path": str(path),
            "sha256": sha256,
            "strategy": router.strategy,
            "version": version,
        }

    async def _on_change(self, change: Change) -> None:
        if change.value is None:
            return  # nothing shared: keep the artifact this process has
        algo, wanted = str(change.value.get("algo")), str(change.value.get("sha256"))
        slot = self._slots.get(algo)
        if slot is None:
            raise ChangeRefused(f"no trained router {algo!r} is configured on this instance")
        if self._loaded.get(algo) == wanted:
            return
        path = Path(str(change.value.get("path")))
        try:
            found = await asyncio.to_thread(manifest_sha256, path)
        except OSError as error:
            raise ChangeRefused(
                f"router artifact {wanted[:12]} not readable at {path}: {error.strerror}"
            ) from None
        if found != wanted:
            reason = f"router artifact at {path} has manifest sha256 {found[:12]}, announced {wanted[:12]}"
            raise ChangeRefused(reason)
        await asyncio.to_thread(slot.swap_from, path)  # ArtifactError: refused and reported
        self._loaded[algo] = wanted


def _identity(source: Path | None) -> str | None:
    try:
        return manifest_sha256(source) if source is not None else None
    except OSError:
        return None
