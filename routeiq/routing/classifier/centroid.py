"""The zero-config prompt classifier: nearest prototypes over a static embedding.

Tier: p_strong = sigmoid(a * (knn(complex) - knn(simple)) + b * log(1 + characters) + c), where knn(t)
is the mean cosine to the K most similar prototypes of tier t (the prototypes act as many small
centroids: "hard" and "easy" are each a union of unlike regions, which one mean per tier blurs),
and a, b, c are fitted at build time on the prototypes (out-of-fold). The size term is there
because length is real evidence (long prompts carry more context and more constraints), and it keeps
prompts whose meaning is alike (one domain: math word problems, one exam) in a useful order. It counts
characters, not WordPiece tokens: formulas and numbers split into many tokens, so a token count
ranks a short equation above a long question (on MMLU STEM, log tokens alone routes below random). Near the
decision boundary the classifier picks ``complex``: sending an easy prompt to a strong model costs
money, sending a hard one to a weak model costs a wrong answer.
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
    TRANSFORMER_ENCODER,
    encoder_kind,
    verify,
)
from routeiq.routing.classifier.encoder import PromptEncoder, StaticEncoder
from routeiq.routing.classifier.errors import ClassifierUnavailable

CENTROID_ARRAYS = (
    "center",
    "tier_names",
    "prototype_embeddings",
    "prototype_tiers",
    "tier_neighbours",
    "tier_calibration",
    "category_names",
    "category_centroids",
    "borderline_margin",
)
SIMILARITY_CHUNK = 64  # rows per broadcast product: 64 x 500 prototypes x 128 dims is ~16 MB


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
    classify_many() must agree exactly. The elementwise form sums each (row, centroid) pair alone;
    callers with many rows and hundreds of prototypes pass it chunks (SIMILARITY_CHUNK rows).
    """
    return (rows[:, None, :] * centroids[None, :, :]).sum(axis=-1)


def text_sizes(texts: Sequence[str]) -> np.ndarray:
    """Each text's length in characters (the size feature), as float64."""
    return np.fromiter((len(text) for text in texts), dtype=np.float64, count=len(texts))


def tier_features(
    centred: np.ndarray, sizes: np.ndarray, prototypes: np.ndarray, prototype_tiers: np.ndarray, k: int
) -> np.ndarray:
    """The calibrated model's inputs, shape (n, 2): k-nearest-prototype margin and log(1 + characters)."""
    margin = tier_margin(centred, prototypes, prototype_tiers, k)
    return np.column_stack([margin, np.log1p(sizes.astype(np.float64))])


def tier_margin(
    centred: np.ndarray, prototypes: np.ndarray, prototype_tiers: np.ndarray, k: int
) -> np.ndarray:
    """knn(complex) - knn(simple) per row: mean cosine to the k most similar prototypes of each tier.

    prototype_tiers holds 0 (simple) or 1 (complex) per prototype row.
    """
    sims = np.empty((len(centred), len(prototypes)), dtype=centred.dtype)
    for start in range(0, len(centred), SIMILARITY_CHUNK):
        sims[start : start + SIMILARITY_CHUNK] = similarities(
            centred[start : start + SIMILARITY_CHUNK], prototypes
        )
    scores = []
    for tier in (0, 1):
        tier_sims = sims[:, prototype_tiers == tier]
        kk = min(k, tier_sims.shape[1])
        top = np.partition(tier_sims, tier_sims.shape[1] - kk, axis=1)[:, tier_sims.shape[1] - kk :]
        scores.append(np.sort(top, axis=1).astype(np.float64).sum(axis=1) / kk)
    return np.asarray(scores[1] - scores[0])


def load_encoder(encoder_dir: Path) -> PromptEncoder:
    """The encoder ``encoder_dir/encoder.json`` asks for: static (default) or sentence-transformers.

    The transformer module is imported only when asked for; it imports torch only in its ``load``.
    """
    if encoder_kind(encoder_dir) == TRANSFORMER_ENCODER:
        from routeiq.routing.classifier.transformer_encoder import TransformerEncoder

        return TransformerEncoder.load(encoder_dir)
    return StaticEncoder.load(encoder_dir)


class CentroidClassifier:
    """Classifies prompts into a tier and a task category; load with ``CentroidClassifier.load``."""

    def __init__(
        self,
        encoder: PromptEncoder,
        arrays: dict[str, np.ndarray],
        borderline_margin: float | None = None,
    ) -> None:
        self._encoder = encoder
        self._center = arrays["center"].astype(np.float32)
        self._prototypes = arrays["prototype_embeddings"].astype(np.float32)
        self._prototype_tiers = arrays["prototype_tiers"].astype(np.int64)
        self._k = int(arrays["tier_neighbours"])
        if self._prototypes.shape[0] != self._prototype_tiers.shape[0] or self._k < 1:
            raise ClassifierUnavailable("centroids.npz prototype arrays are inconsistent")
        if not (np.any(self._prototype_tiers == 0) and np.any(self._prototype_tiers == 1)):
            raise ClassifierUnavailable("centroids.npz needs prototypes of both tiers")
        calibration = arrays["tier_calibration"].astype(np.float64)
        if calibration.shape != (3,):
            raise ClassifierUnavailable("centroids.npz tier_calibration must hold (margin, size, offset)")
        self._weights, self._offset = calibration[:2], float(calibration[2])
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
        encoder = load_encoder(directory / ENCODER_DIR)
        try:
            with np.load(directory / CENTROIDS_FILE, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in CENTROID_ARRAYS}
        except (OSError, ValueError, KeyError) as exc:
            raise ClassifierUnavailable(f"cannot read {directory / CENTROIDS_FILE}: {exc}") from exc
        if arrays["center"].shape != (encoder.dimension,):
            raise ClassifierUnavailable("centroids were built for a different encoder dimension")
        return cls(encoder, arrays, borderline_margin)

    @property
    def encoder(self) -> PromptEncoder:
        """The encoder (static by default), shared with learned routers so a prompt is embedded once."""
        return self._encoder

    @property
    def categories(self) -> tuple[str, ...]:
        return self._category_names

    def classify(self, text: str) -> Classification:
        return self.classify_embeddings(self._encoder.embed([text]), [text])[0]

    def classify_many(self, texts: Sequence[str]) -> list[Classification]:
        texts = list(texts)
        return self.classify_embeddings(self._encoder.embed(texts), texts)

    def p_strong(self, embeddings: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Vectorised p_strong for ``encoder.embed(texts)`` output and the texts (for batch scoring)."""
        return self._p_strong(centre(embeddings, self._center), text_sizes(texts))

    def _p_strong(self, centred: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        features = tier_features(centred, sizes, self._prototypes, self._prototype_tiers, self._k)
        logits = (features * self._weights).sum(axis=1) + self._offset
        return np.asarray(1.0 / (1.0 + np.exp(-logits)))

    def classify_embeddings(self, embeddings: np.ndarray, texts: Sequence[str]) -> list[Classification]:
        """Classify rows of ``encoder.embed(texts)`` (lets callers embed once, use twice)."""
        if len(texts) != embeddings.shape[0]:
            raise ValueError("one embedding per text")
        centred = centre(embeddings, self._center)
        p_strong = self._p_strong(centred, text_sizes(texts))
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
