"""A trained router ready to serve: encoder + surface features + a fitted algorithm + its calibration.

``LearnedRouter`` is what ``load_router`` returns and what the gateway calls. It predicts, per prompt,
a score per model (higher = that model is expected to do better) and, when the artifact names a
(weak, strong) pair, ``p_strong``: the probability the strong model beats the weak one, ties counted
half (0.5 = no expected difference). Because 0.5 is not a useful cut-off for cost (on most data the
strong model is "at least as good" nearly everywhere), the artifact carries a *threshold* chosen at
training time for a target share of strong calls, plus the training distribution of ``p_strong`` so
a verdict can say how far from the threshold it is (its confidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routeiq.routing.catalogue import learned_strategy_name
from routeiq.routing.learned.algorithms import Scorer
from routeiq.routing.learned.encoder import Encoder, embed_in_batches
from routeiq.routing.learned.features import FeatureSpec

SIMPLE, COMPLEX = "simple", "complex"
CALIBRATION_POINTS = 101


@dataclass(frozen=True)
class RouterInfo:
    """Everything about a router except its arrays: exactly what its manifest records."""

    algo: str
    models: tuple[str, ...]
    weak: str | None
    strong: str | None
    encoder_id: str
    encoder_dimension: int
    feature_weight: float
    score_range: tuple[float, float]
    threshold: float
    strong_fraction: float
    calibration: tuple[float, ...]
    params: dict[str, Any]
    seed: int
    training: dict[str, Any] = field(default_factory=dict)
    lexical_weight: float = 0.0  # the LSA word block's weight (features.lexical); 0 = not used

    @property
    def has_pair(self) -> bool:
        return self.weak is not None and self.strong is not None

    @property
    def outputs(self) -> int:
        return len(self.models) + (1 if self.has_pair else 0)


@dataclass(frozen=True, slots=True)
class Prediction:
    """Per-prompt model scores (rows = prompts, columns = ``models``); ``p_strong`` is None without a pair."""

    models: tuple[str, ...]
    scores: np.ndarray
    p_strong: np.ndarray | None


@dataclass(frozen=True, slots=True)
class TierVerdict:
    """One prompt's verdict: ``tier`` is ``complex`` when p_strong >= threshold (borderline too), else
    ``simple``; ``confidence`` is how far from the threshold it sits."""

    p_strong: float
    tier: str
    confidence: float


class LearnedRouter:
    """Bound to the encoder it was trained with; thread-safe (immutable after construction)."""

    def __init__(self, info: RouterInfo, scorer: Scorer, features: FeatureSpec, encoder: Encoder) -> None:
        if encoder.id != info.encoder_id or encoder.dimension != info.encoder_dimension:
            raise ValueError(
                f"router expects encoder {info.encoder_id} ({info.encoder_dimension}d), "
                f"got {encoder.id} ({encoder.dimension}d)"
            )
        self.info = info
        self.scorer = scorer
        self.features = features
        self.encoder = encoder

    @property
    def algo(self) -> str:
        return self.info.algo

    @property
    def strategy(self) -> str:
        """The strategy name the gateway lists this router under, e.g. ``llmrouter-knn``."""
        return learned_strategy_name(self.info.algo)

    def predict_embeddings(self, texts: Sequence[str], embeddings: np.ndarray) -> Prediction:
        """Predict from precomputed embeddings (the texts are still needed for the surface cues)."""
        raw = self.scorer.predict(self.features.transform(texts, embeddings))
        n_models = len(self.info.models)
        low, high = self.info.score_range
        scores = low + raw[:, :n_models] * (high - low)
        p_strong = raw[:, n_models].clip(0.0, 1.0) if self.info.has_pair else None
        return Prediction(self.info.models, scores, p_strong)

    def predict(self, texts: Sequence[str], batch_size: int = 512) -> Prediction:
        return self.predict_embeddings(texts, embed_in_batches(self.encoder, texts, batch_size))

    def p_strong(self, texts: Sequence[str]) -> np.ndarray:
        return _p_strong_of(self.predict(texts))

    def decide(self, p_strong: np.ndarray, threshold: float | None = None) -> list[TierVerdict]:
        """Tiers and confidences for given ``p_strong`` values (threshold defaults to the artifact's).

        Confidence is how far the prompt sits from the threshold in the training distribution of
        p_strong (0 = on the threshold, 1 = as far as the training data ever went on that side).
        """
        cut = self.info.threshold if threshold is None else threshold
        grid = np.linspace(0.0, 1.0, len(self.info.calibration))
        curve = np.asarray(self.info.calibration)
        at_cut = float(np.interp(cut, curve, grid))
        span = max(at_cut, 1.0 - at_cut, 1e-9)
        positions = np.interp(p_strong, curve, grid)
        return [
            TierVerdict(
                p_strong=float(value),
                tier=COMPLEX if value >= cut else SIMPLE,
                confidence=float(min(1.0, abs(position - at_cut) / span)),
            )
            for value, position in zip(p_strong, positions, strict=True)
        ]

    def classify(self, texts: Sequence[str], threshold: float | None = None) -> list[TierVerdict]:
        return self.decide(self.p_strong(texts), threshold)

    def classify_embeddings(
        self, texts: Sequence[str], embeddings: np.ndarray, threshold: float | None = None
    ) -> list[TierVerdict]:
        """``classify`` for texts already embedded with this router's encoder."""
        return self.decide(_p_strong_of(self.predict_embeddings(texts, embeddings)), threshold)


def _p_strong_of(prediction: Prediction) -> np.ndarray:
    if prediction.p_strong is None:
        raise ValueError("this router was trained without a (weak, strong) pair: it has no p_strong")
    return prediction.p_strong


def calibration_curve(p_strong: np.ndarray) -> tuple[float, ...]:
    """Quantiles 0, 1, ..., 100 % of the training p_strong: the map from a value to its rank."""
    return tuple(float(q) for q in np.quantile(p_strong, np.linspace(0.0, 1.0, CALIBRATION_POINTS)))
