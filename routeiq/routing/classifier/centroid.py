"""The zero-config prompt classifier: nearest centroids over a static embedding.

Tier: p_strong = sigmoid(scale * (cos(complex) - cos(simple)) + offset), with scale/offset fitted
at build time. Near the decision boundary the classifier picks ``complex``: sending an easy prompt
to a strong model costs money, sending a hard one to a weak model costs a wrong answer.
Category: the most similar of the eight category centroids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routeiq.routing.classifier.artifacts import (
    CENTROIDS_FILE,
    DEFAULT_DATA_DIR,
    ENCODER_DIR,
    verify,
)
from routeiq.routing.classifier.encoder import StaticEncoder
from routeiq.routing.classifier.errors import ClassifierUnavailable

CENTROID_ARRAYS = (
    "center",
    "tier_names",
    "tier_centroids",
    "tier_calibration",
    "category_names",
    "category_centroids",
    "borderline_margin",
)


@dataclass(frozen=True)
class Classification:
    """One prompt's verdict.

    ``p_strong``: how strongly the prompt needs the strong tier (a calibrated probability, also
    usable as a routing score). ``confidence``: confidence in ``tier``; a clear decision has
    confidence >= 0.5 + margin, a borderline one (sent to ``complex`` to be safe) < 0.5.
    """

    tier: str
    p_strong: float
    category: str
    confidence: float


def centre(embeddings: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Subtract the prototypes' mean direction and renormalise.

    Static embeddings share a large common component; removing it makes cosines reflect what
    distinguishes prompts rather than what all English text has in common.
    """
    shifted = embeddings - center
    norms = np.linalg.norm(shifted, axis=1, keepdims=True)
    return np.divide(shifted, norms, out=np.zeros_like(shifted), where=norms > 0)


def similarities(rows: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """rows @ centroids.T, computed row by row so a text scores the same alone or in a batch.

    A BLAS matmul may sum in a different order for different batch sizes; classify() and
    classify_many() must agree exactly, and at k <= 8 centroids the elementwise form costs nothing.
    """
    return (rows[:, None, :] * centroids[None, :, :]).sum(axis=-1)


def tier_margin(centred: np.ndarray, tier_centroids: np.ndarray) -> np.ndarray:
    """cos(complex) - cos(simple) for each row; tier_centroids rows are (simple, complex)."""
    sims = similarities(centred, tier_centroids)
    return sims[:, 1] - sims[:, 0]


class CentroidClassifier:
    """Classifies prompts into a tier and a task category; load with ``CentroidClassifier.load``."""

    def __init__(
        self,
        encoder: StaticEncoder,
        arrays: dict[str, np.ndarray],
        borderline_margin: float | None = None,
    ) -> None:
        self._encoder = encoder
        self._center = arrays["center"].astype(np.float32)
        self._tier_centroids = arrays["tier_centroids"].astype(np.float32)
        self._scale, self._offset = (float(v) for v in arrays["tier_calibration"])
        self._category_names = tuple(str(name) for name in arrays["category_names"])
        self._category_centroids = arrays["category_centroids"].astype(np.float32)
        margin = float(arrays["borderline_margin"]) if borderline_margin is None else borderline_margin
        if not 0.0 <= margin < 0.5:
            raise ValueError(f"borderline_margin must be in [0, 0.5), got {margin}")
        self.borderline_margin = margin
        if tuple(str(name) for name in arrays["tier_names"]) != ("simple", "complex"):
            raise ClassifierUnavailable("centroids.npz tier_names must be ('simple', 'complex')")

    @classmethod
    def load(
        cls, directory: Path = DEFAULT_DATA_DIR, borderline_margin: float | None = None
    ) -> CentroidClassifier:
        """Verify every artifact's sha256, then load; raises ClassifierUnavailable on any problem."""
        directory = Path(directory)
        verify(directory)
        encoder = StaticEncoder.load(directory / ENCODER_DIR)
        try:
            with np.load(directory / CENTROIDS_FILE, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in CENTROID_ARRAYS}
        except (OSError, ValueError, KeyError) as exc:
            raise ClassifierUnavailable(f"cannot read {directory / CENTROIDS_FILE}: {exc}") from exc
        if arrays["center"].shape != (encoder.dimension,):
            raise ClassifierUnavailable("centroids were built for a different encoder dimension")
        return cls(encoder, arrays, borderline_margin)

    @property
    def encoder(self) -> StaticEncoder:
        """The static encoder, shared with learned routers so a prompt is embedded once."""
        return self._encoder

    @property
    def categories(self) -> tuple[str, ...]:
        return self._category_names

    def classify(self, text: str) -> Classification:
        return self.classify_embeddings(self._encoder.embed([text]))[0]

    def classify_many(self, texts: Sequence[str]) -> list[Classification]:
        return self.classify_embeddings(self._encoder.embed(list(texts)))

    def p_strong(self, embeddings: np.ndarray) -> np.ndarray:
        """Vectorised p_strong for embeddings from ``encoder.embed`` (for batch scoring)."""
        margin = tier_margin(centre(embeddings, self._center), self._tier_centroids)
        return np.asarray(1.0 / (1.0 + np.exp(-(self._scale * margin + self._offset))))

    def classify_embeddings(self, embeddings: np.ndarray) -> list[Classification]:
        """Classify rows already embedded with ``encoder`` (lets callers embed once, use twice)."""
        centred = centre(embeddings, self._center)
        margin = tier_margin(centred, self._tier_centroids)
        p_strong = 1.0 / (1.0 + np.exp(-(self._scale * margin + self._offset)))
        category_index = similarities(centred, self._category_centroids).argmax(axis=1)
        out = []
        for p, index in zip(p_strong.tolist(), category_index.tolist(), strict=True):
            tier, confidence = self._decide(p)
            out.append(Classification(tier, p, self._category_names[index], confidence))
        return out

    def _decide(self, p: float) -> tuple[str, float]:
        if p >= 0.5 + self.borderline_margin:
            return "complex", p
        if p <= 0.5 - self.borderline_margin:
            return "simple", 1.0 - p
        return "complex", min(p, 1.0 - p)  # borderline: the safer tier, and say we were unsure
