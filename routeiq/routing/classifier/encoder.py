"""A torch-free static sentence encoder: WordPiece tokens → table rows → weighted mean → unit vector.

The table is distilled from all-MiniLM-L6-v2 by ``scripts/build_static_encoder.py`` (see its
docstring). Encoding a prompt is one Rust tokenizer call plus a gather and a sum in numpy, so a
single prompt costs tens of microseconds and thousands embed in one vectorised pass.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from tokenizers import Tokenizer

from routeiq.routing.classifier.errors import ClassifierUnavailable

ENCODER_FILES = ("tokenizer.json", "embeddings.npy", "weights.npy", "encoder.json")
MAX_TOKENS = 512  # the head of a prompt says what it is about; bounds the cost of huge prompts
# Tokenizers truncate only after tokenizing the whole text, so cut the characters first: 8 chars
# per token is generous for English (WordPiece averages ~4-5) and bounds a 1 MB prompt to ~0.2 ms.
CHARS_PER_TOKEN_BOUND = 8


class PromptEncoder(Protocol):
    """What the classifier needs from an encoder (``StaticEncoder``, or the optional ``TransformerEncoder``).

    Outputs are float32, L2-normalised rows (zero for a text with no tokens); token counts are
    WordPiece tokens without specials, after truncation to ``MAX_TOKENS``.
    """

    @property
    def id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_with_counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...


class StaticEncoder:
    """Embeds texts with a static token table; outputs are float32 and L2-normalised.

    A text with no known tokens (e.g. empty) embeds to the zero vector: nothing is known about it,
    and a zero vector scores 0 against every centroid instead of pretending to a direction.
    """

    def __init__(
        self,
        encoder_id: str,
        tokenizer: Tokenizer,
        table: np.ndarray,
        weights: np.ndarray,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        if table.ndim != 2 or weights.shape != (table.shape[0],):
            raise ClassifierUnavailable(f"encoder table {table.shape} and weights {weights.shape} disagree")
        self.id = encoder_id
        self.dimension = int(table.shape[1])
        # Weights folded into the rows once, so pooling is a gather + sum per text.
        self._rows = (table.astype(np.float32) * weights.astype(np.float32)[:, None]).astype(np.float32)
        self._weights = weights.astype(np.float32)
        self._tokenizer = tokenizer
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._max_chars = max_tokens * CHARS_PER_TOKEN_BOUND

    @classmethod
    def load(cls, directory: Path) -> StaticEncoder:
        """Read the four encoder files; raises ClassifierUnavailable if any is missing or malformed."""
        directory = Path(directory)
        missing = [name for name in ENCODER_FILES if not (directory / name).is_file()]
        if missing:
            raise ClassifierUnavailable(f"encoder files missing in {directory}: {', '.join(missing)}")
        try:
            meta = json.loads((directory / "encoder.json").read_text(encoding="utf-8"))
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            table = np.load(directory / "embeddings.npy", allow_pickle=False)
            weights = np.load(directory / "weights.npy", allow_pickle=False)
        except (OSError, ValueError, Exception) as exc:  # tokenizers raises a bare Exception
            raise ClassifierUnavailable(f"cannot read encoder in {directory}: {exc}") from exc
        if int(meta.get("dimension", -1)) != table.shape[1] or tokenizer.get_vocab_size() != table.shape[0]:
            raise ClassifierUnavailable(f"encoder.json does not describe the table in {directory}")
        return cls(str(meta["id"]), tokenizer, table, weights)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """WordPiece ids without [CLS]/[SEP] (they carry no meaning in a static table)."""
        heads = [text[: self._max_chars] for text in texts]
        if len(heads) == 1:
            return [self._tokenizer.encode(heads[0], add_special_tokens=False).ids]
        return [enc.ids for enc in self._tokenizer.encode_batch(heads, add_special_tokens=False)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dimension), float32, each row unit-norm (or zero for an empty text)."""
        return self.embed_with_counts(texts)[0]

    def embed_with_counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings plus each text's token count (after truncation), from one tokenizer pass."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out, np.zeros(0, dtype=np.int64)
        ids = self.token_ids(texts)
        lengths = np.fromiter((len(seq) for seq in ids), dtype=np.int64, count=len(ids))
        present = lengths > 0
        if not present.any():
            return out, lengths
        flat = np.fromiter((i for seq in ids for i in seq), dtype=np.int64, count=int(lengths.sum()))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[present]
        sums = np.add.reduceat(self._rows[flat], starts, axis=0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        out[present] = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
        return out, lengths
