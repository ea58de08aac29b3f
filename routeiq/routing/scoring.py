"""Scorers: how demanding is this prompt? The tier-aware strategies ask one of these.

``CentroidScorer`` uses the shipped zero-config classifier. When its artifacts are missing or
corrupt it does not guess at random: it says so (readiness, a metric) and falls back to the length
rule below, which is documented and deterministic. ``LearnedScorer`` uses a trained router
artifact (``routeiq train``) held in a slot that can be swapped at runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from routeiq.routing.classifier.encoder import StaticEncoder
from routeiq.routing.strategy import Assessment

logger = logging.getLogger("routeiq.routing")

# The degraded rule: a prompt of LENGTH_RULE_FULL_CHARS characters or more counts as needing the
# strong tier (p_strong 1.0), shorter ones proportionally less. Crude, but honest and stable.
LENGTH_RULE_FULL_CHARS = 1500


class Scorer(Protocol):
    name: str
    # Assessing takes milliseconds (a transformer encoder, not the static one): the picker then runs
    # it in a worker thread so the event loop keeps serving other requests meanwhile.
    slow: bool

    def assess(self, text: str) -> Assessment: ...


# A clear verdict has at least this confidence; below it the call was close (and went to complex).
CLEAR_CONFIDENCE = 0.5


def length_rule(text: str) -> Assessment:
    p_strong = min(1.0, len(text) / LENGTH_RULE_FULL_CHARS)
    complex_ = p_strong >= 0.35
    return Assessment(
        p_strong,
        "conversation",
        confidence=0.3,
        scorer="length-rule",
        complex=complex_,
        borderline=p_strong < 0.65,
    )


class CentroidScorer:
    name = "centroid"

    def __init__(self, classifier: Any | None, on_fallback: Callable[[], None] | None = None) -> None:
        self.classifier = classifier  # None: artifacts unavailable, the length rule serves
        self._on_fallback = on_fallback
        self.slow = classifier is not None and not isinstance(classifier.encoder, StaticEncoder)

    def assess(self, text: str) -> Assessment:
        if self.classifier is None:
            if self._on_fallback is not None:
                self._on_fallback()
            return length_rule(text)
        result = self.classifier.classify(text)
        return Assessment(
            result.p_strong,
            result.category,
            result.confidence,
            scorer=self.name,
            complex=result.tier == "complex",
            borderline=result.confidence < CLEAR_CONFIDENCE,
        )


class LearnedScorer:
    """A trained router's p_strong; the category still comes from the centroid classifier."""

    def __init__(self, name: str, slot: Any, centroid: CentroidScorer) -> None:
        self.name = name
        self._slot = slot
        self._centroid = centroid
        self.slow = centroid.slow  # (routers themselves use the static or the hashing encoder)

    def assess(self, text: str) -> Assessment:
        router, classifier = self._slot.current, self._centroid.classifier
        if classifier is not None and router.encoder is classifier.encoder:  # embedded once for both
            embeddings = router.encoder.embed([text])
            category = classifier.classify_embeddings(embeddings, [text])[0].category
            verdict = router.classify_embeddings([text], embeddings)[0]
        else:
            category = self._centroid.assess(text).category
            verdict = router.classify([text])[0]  # against the threshold fitted in training
        return Assessment(
            verdict.p_strong,
            category,
            verdict.confidence,
            scorer=self.name,
            complex=verdict.tier == "complex",
            borderline=verdict.confidence < CLEAR_CONFIDENCE,
        )
