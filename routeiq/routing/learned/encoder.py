"""The prompt encoders learned routers are trained against, and the check that they still match.

A learned router only makes sense with the exact encoder it was trained on: the artifact records the
encoder's ``id`` and ``dimension`` and loading refuses a different one. The production encoder is the
zero-config classifier's static encoder (``routeiq.routing.classifier``), imported lazily because it
loads vectors from disk. ``HashingEncoder`` is a deterministic, dependency-free stand-in (hashed word
and character n-grams) for tests and for environments where the shipped classifier data is missing;
it is never picked silently: callers ask for it by name.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

HASHING_ENCODER_NAME = "hashing"
DEFAULT_ENCODER_NAME = "centroid"
ENCODER_NAMES = (DEFAULT_ENCODER_NAME, HASHING_ENCODER_NAME)
WORD = re.compile(r"\w+", re.UNICODE)


@runtime_checkable
class Encoder(Protocol):
    """Text → L2-normalised float32 vectors of a fixed dimension, identified by a stable ``id``."""

    @property
    def id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class EncoderUnavailable(RuntimeError):
    """The requested encoder cannot be built here (for example the classifier data is not installed)."""


class HashingEncoder:
    """Signed feature hashing of words, word bigrams and character trigrams, log-scaled and normalised.

    Deterministic across processes and machines (crc32, not Python's salted ``hash``), so an artifact
    trained with it in one process loads and scores identically in another.
    """

    def __init__(self, dimension: int = 256) -> None:
        if dimension < 8:
            raise ValueError("dimension must be at least 8")
        self._dimension = dimension

    @property
    def id(self) -> str:
        return f"hashing-v1-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def _features(self, text: str) -> list[str]:
        words = WORD.findall(text.lower())
        features = [f"w:{word}" for word in words]
        features += [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
        for word in words:
            padded = f"<{word}>"
            features += [f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2)]
        return features

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                code = zlib.crc32(feature.encode("utf-8"))
                out[row, code % self._dimension] += 1.0 if code & 0x80000000 else -1.0
        np.copysign(np.log1p(np.abs(out)), out, out=out)
        return normalise(out)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero) as float32."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def default_encoder() -> Encoder:
    """The production encoder: the zero-config centroid classifier's static encoder.

    Raises ``EncoderUnavailable`` (never falls back quietly) when the classifier cannot load.
    """
    try:
        from routeiq.routing.classifier import CentroidClassifier
    except ImportError as error:
        raise EncoderUnavailable(f"the centroid classifier is not installed: {error}") from error
    try:
        encoder: Encoder = CentroidClassifier.load().encoder
    except Exception as error:  # ClassifierUnavailable, or data missing: say which, loudly
        raise EncoderUnavailable(f"the centroid classifier could not load: {error}") from error
    return encoder


def encoder_by_name(name: str) -> Encoder:
    """``centroid`` (the production default) or ``hashing`` (the dependency-free stand-in)."""
    if name == DEFAULT_ENCODER_NAME:
        return default_encoder()
    if name == HASHING_ENCODER_NAME or name.startswith("hashing-v1-"):
        dimension = int(name.rsplit("-", 1)[1]) if name.startswith("hashing-v1-") else 256
        return HashingEncoder(dimension)
    raise EncoderUnavailable(f"unknown encoder {name!r} (choose from {', '.join(ENCODER_NAMES)})")


def embed_in_batches(encoder: Encoder, texts: Sequence[str], batch_size: int = 512) -> np.ndarray:
    """Embed many texts a batch at a time (bounded memory, and the encoder's vectorised path)."""
    if not texts:
        return np.zeros((0, encoder.dimension), dtype=np.float32)
    parts = [encoder.embed(texts[start : start + batch_size]) for start in range(0, len(texts), batch_size)]
    vectors = np.concatenate(parts).astype(np.float32, copy=False)
    if vectors.shape != (len(texts), encoder.dimension):
        raise EncoderUnavailable(
            f"encoder {encoder.id} returned shape {vectors.shape}, "
            f"expected ({len(texts)}, {encoder.dimension})"
        )
    return vectors
