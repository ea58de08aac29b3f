"""What a learned router sees of a prompt: its embedding plus a few cheap surface cues.

The embedding says what a prompt is about; it says little about how long or how numeric it is, and
those matter for difficulty (a long quantitative question is harder for a small model than a short
factual one). The cues below are computed from the text in microseconds, standardised with the
training set's mean and spread (stored in the artifact), and scaled by ``weight`` so that together
they carry that share of a row beside the unit-norm embedding. The weight is 0.35 unless training
chooses it: for knn (and the ensemble's knn member), whose cosine distance it changes, it is chosen
by cross-validation on the training rows (``train.choose_feature_weight``).

Optionally a third block follows: the prompt's words as a few LSA dimensions (``lexical``), unit
length times their own weight, off unless training's cross-validation turns them on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from routeiq.routing.learned.lexical import LexicalSpec

NUMBER = re.compile(r"\d+(?:\.\d+)?")
MATH = re.compile(r"[=+\-*/^<>√∑∫π$%]")
WORD = re.compile(r"\w+")
CUES = (
    "log_chars",
    "log_words",
    "log_lines",
    "digit_share",
    "math_share",
    "numbers",
    "upper_share",
    "mean_word_length",
    "question_marks",
)


def surface_cues(texts: Sequence[str]) -> np.ndarray:
    """The raw (unscaled) cues, one row per text, columns in ``CUES`` order."""
    rows = np.zeros((len(texts), len(CUES)), dtype=np.float64)
    for row, text in enumerate(texts):
        chars = max(len(text), 1)
        words = WORD.findall(text)
        rows[row] = (
            np.log1p(len(text)),
            np.log1p(len(words)),
            np.log1p(text.count("\n")),
            sum(character.isdigit() for character in text) / chars,
            len(MATH.findall(text)) / chars,
            np.log1p(len(NUMBER.findall(text))),
            sum(character.isupper() for character in text) / chars,
            (sum(len(word) for word in words) / len(words)) if words else 0.0,
            np.log1p(text.count("?")),
        )
    return rows


@dataclass(frozen=True)
class FeatureSpec:
    """How to turn (texts, embeddings) into a router's input; fitted once on the training set."""

    mean: np.ndarray
    scale: np.ndarray
    weight: float
    lexical: LexicalSpec | None = None

    @property
    def extra(self) -> int:
        """Columns after the embedding: the cues, then the lexical block."""
        return int(self.mean.size) + (self.lexical.rank if self.lexical is not None else 0)

    @property
    def lexical_weight(self) -> float:
        return self.lexical.weight if self.lexical is not None else 0.0

    def with_lexical(self, lexical: LexicalSpec | None, weight: float) -> FeatureSpec:
        """This spec with ``lexical`` scaled to ``weight`` (0: without it); the SVD is fitted once."""
        if lexical is None or weight <= 0:
            return replace(self, lexical=None)
        return replace(self, lexical=replace(lexical, weight=float(weight)))

    @classmethod
    def fit(cls, texts: Sequence[str], *, weight: float = 0.35) -> FeatureSpec:
        """Standardisation from the training texts; ``weight=0`` turns the cues off (no lexical block:
        ``with_lexical`` adds one)."""
        if weight <= 0:
            return cls(np.zeros(0), np.zeros(0), 0.0)
        cues = surface_cues(texts)
        std = cues.std(axis=0)
        # Unit-variance cues, then each scaled so that all of them together have norm ≈ weight.
        scale = (
            np.where(std > 1e-12, 1.0 / np.where(std > 1e-12, std, 1.0), 0.0) * weight / np.sqrt(len(CUES))
        )
        return cls(cues.mean(axis=0), scale, weight)

    def transform(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """``[embedding | scaled cues | lexical]`` as float32, one row per text."""
        if len(texts) != embeddings.shape[0]:
            raise ValueError("one embedding per text")
        if self.extra == 0:
            return embeddings.astype(np.float32, copy=False)
        blocks = [embeddings]
        if self.mean.size:
            blocks.append((surface_cues(texts) - self.mean) * self.scale)
        if self.lexical is not None:
            blocks.append(self.lexical.transform(texts))
        return np.hstack(blocks).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"feature_mean": self.mean.astype(np.float64), "feature_scale": self.scale.astype(np.float64)}
        return out | (self.lexical.arrays() if self.lexical is not None else {})

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], weight: float, lexical_weight: float = 0.0
    ) -> FeatureSpec:
        """The saved spec; the lexical block only when the manifest gives it a weight (older artifacts
        have neither)."""
        lexical = LexicalSpec.from_arrays(arrays, lexical_weight) if lexical_weight > 0 else None
        return cls(arrays["feature_mean"], arrays["feature_scale"], weight, lexical)
