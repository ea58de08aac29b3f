"""Lexical features: which words a prompt uses, as a few dense LSA dimensions beside the embedding.

The static 128-d embedding blurs subjects together; the words themselves ("torts", "enzyme",
"eigenvalue") name a subject precisely, and on in-domain traffic knowing the subject is much of
knowing whether the strong model is needed. A prompt's words and word bigrams are hashed (crc32,
stable across processes) into ``BUCKETS`` columns, weighted by sublinear tf times the idf of the
training prompts and L2-normalised (tf-idf); a truncated SVD of the training prompts' tf-idf (latent
semantic analysis, by a seeded randomized range finder in numpy) maps that to ``rank`` dimensions.
The result is L2-normalised and scaled by ``weight`` so a distance-based router sees a cosine on
words beside the cosine on the embedding. Everything is fitted on the training prompts only, and
whether to use it at all (and how much) is chosen by cross-validation in ``train``.

Prediction costs a tokenisation, one crc32 per term and a gather of ``rank`` floats per term.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BUCKETS = 1 << 13  # hashed term columns; the SVD's components are BUCKETS x rank float32
WORD = re.compile(r"\w+")
OVERSAMPLE = 10
POWER_ITERATIONS = 4
CHUNK = 1024  # rows densified at a time while fitting: bounds memory at CHUNK x BUCKETS floats


def term_counts(text: str) -> dict[int, int]:
    """Hashed lower-cased word unigrams and bigrams of ``text`` and how often each occurs."""
    words = WORD.findall(text.lower())
    counts: dict[int, int] = {}
    terms = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    for term in terms:
        bucket = zlib.crc32(term.encode("utf-8")) % BUCKETS
        counts[bucket] = counts.get(bucket, 0) + 1
    return counts


def _rows(texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per text: its buckets and sublinear term frequencies (1 + log tf)."""
    out = []
    for text in texts:
        counts = term_counts(text)
        buckets = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        out.append((buckets, tf))
    return out


def _tfidf_dense(rows: list[tuple[np.ndarray, np.ndarray]], idf: np.ndarray) -> np.ndarray:
    """L2-normalised tf-idf of ``rows`` as a dense (len(rows), BUCKETS) float32 block."""
    out = np.zeros((len(rows), BUCKETS), dtype=np.float32)
    for i, (buckets, tf) in enumerate(rows):
        values = tf * idf[buckets]
        norm = float(np.linalg.norm(values))
        if norm > 0:
            out[i, buckets] = values / norm
    return out


@dataclass(frozen=True)
class LexicalSpec:
    """idf per bucket and the SVD's components, fitted on the training prompts; ``weight`` 0 = off."""

    idf: np.ndarray  # (BUCKETS,)
    components: np.ndarray  # (BUCKETS, rank) float32
    weight: float

    @property
    def rank(self) -> int:
        return int(self.components.shape[1])

    @classmethod
    def fit(cls, texts: Sequence[str], *, rank: int, weight: float, seed: int = 0) -> LexicalSpec:
        """tf-idf and a rank-``rank`` truncated SVD of the training ``texts`` (randomized, seeded)."""
        if rank < 1 or weight <= 0:
            raise ValueError("lexical features need rank >= 1 and weight > 0")
        rows = _rows(texts)
        df = np.zeros(BUCKETS)
        for buckets, _ in rows:
            df[buckets] += 1.0
        idf = np.log((1.0 + len(rows)) / (1.0 + df)) + 1.0
        width = min(rank + OVERSAMPLE, BUCKETS, max(len(rows), 1))
        probe = np.random.default_rng(seed).standard_normal((BUCKETS, width)).astype(np.float32)
        chunks = [_tfidf_dense(rows[start : start + CHUNK], idf) for start in range(0, len(rows), CHUNK)]
        for _ in range(POWER_ITERATIONS):  # X^T X probe, re-orthonormalised: the top right vectors emerge
            back = sum(chunk.T @ (chunk @ probe) for chunk in chunks)
            probe = np.linalg.qr(np.asarray(back, dtype=np.float64))[0].astype(np.float32)
        image = np.vstack([chunk @ probe for chunk in chunks]).astype(np.float64)
        _, _, vt = np.linalg.svd(image, full_matrices=False)  # X Q = U S (Vt); X's right vectors = Q V
        components = (probe.astype(np.float64) @ vt.T[:, : min(rank, width)]).astype(np.float32)
        return cls(idf, components, float(weight))

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), rank) float32: each text's LSA vector, unit length times ``weight``."""
        out = np.zeros((len(texts), self.rank), dtype=np.float64)
        for i, (buckets, tf) in enumerate(_rows(texts)):
            values = tf * self.idf[buckets]
            out[i] = values @ self.components[buckets]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms > 0, norms, 1.0) * self.weight).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"lexical_idf": self.idf.astype(np.float64), "lexical_components": self.components}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], weight: float) -> LexicalSpec:
        idf, components = arrays["lexical_idf"], arrays["lexical_components"]
        if idf.shape != (BUCKETS,) or components.ndim != 2 or components.shape[0] != BUCKETS:
            raise ValueError("lexical idf and components disagree with the hashed vocabulary's size")
        return cls(idf.astype(np.float64), components.astype(np.float32), float(weight))
