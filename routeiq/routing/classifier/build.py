"""Build the shipped centroids: ``python -m routeiq.routing.classifier.build``.

Embeds data/classifier/prototypes.yaml with the shipped static encoder and writes centroids.npz
(the centred prototype embeddings as float16 with their tiers, category centroids, calibration)
and metadata.json (encoder, counts, out-of-fold accuracy, sha256 of every artifact). Pure numpy and
deterministic: the same inputs give byte-identical outputs, so the committed artifacts can be
checked by rebuilding them. For that reason metadata.json records no wall-clock build date: the git
commit that changed the artifacts dates them.

``--encoder sentence-transformers --out DIR`` instead writes a complete artifact directory for the
optional transformer encoder (``pip install routeiq[transformers]``): ``encoder/encoder.json``
naming the model, a copy of prototypes.yaml, and centroids and metadata built from the same
prototypes embedded by all-MiniLM-L6-v2. It needs torch, and the model at run time too, so it is
built by users rather than shipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from routeiq.routing.classifier.artifacts import (
    CENTROIDS_FILE,
    DEFAULT_DATA_DIR,
    ENCODER_DESCRIPTOR,
    ENCODER_DIR,
    ENCODER_KINDS,
    FORMAT_VERSION,
    METADATA_FILE,
    PROTOTYPES_FILE,
    STATIC_ENCODER,
    TRANSFORMER_ENCODER,
    required_files,
    sha256_file,
)
from routeiq.routing.classifier.calibration import fit_logistic
from routeiq.routing.classifier.centroid import centre, load_encoder, similarities, text_sizes, tier_features
from routeiq.routing.classifier.encoder import PromptEncoder, StaticEncoder
from routeiq.routing.classifier.prototypes import CATEGORIES, TIERS, load_prototypes

DEFAULT_BORDERLINE_MARGIN = 0.1
FOLDS = 5
TIER_NEIGHBOURS = 5  # prototypes of each tier averaged into its k-nearest score


def class_centroids(centred: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Unit-norm mean of each class's rows, shape (n_classes, d)."""
    means = np.stack([centred[labels == k].mean(axis=0) for k in range(n_classes)])
    return (means / np.linalg.norm(means, axis=1, keepdims=True)).astype(np.float32)


def stored_prototypes(centred: np.ndarray) -> np.ndarray:
    """The prototype rows exactly as the runtime sees them: float16 on disk, float32 in memory."""
    return centred.astype(np.float16).astype(np.float32)


def out_of_fold(
    centred: np.ndarray, sizes: np.ndarray, tiers: np.ndarray, cats: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Tier features and category predictions for each prototype from prototypes other than its fold's."""
    folds = np.arange(len(tiers)) % FOLDS
    features = np.zeros((len(tiers), 2), dtype=np.float64)
    predicted = np.zeros(len(tiers), dtype=np.int64)
    stored = stored_prototypes(centred)
    for fold in range(FOLDS):
        train, held = folds != fold, folds == fold
        cat_c = class_centroids(centred[train], cats[train], len(CATEGORIES))
        features[held] = tier_features(
            centred[held], sizes[held], stored[train], tiers[train], TIER_NEIGHBOURS
        )
        predicted[held] = similarities(centred[held], cat_c).argmax(axis=1)
    return features, predicted


def prepare_transformer_dir(data_dir: Path, out_dir: Path | None) -> Path:
    """Write out_dir/encoder/encoder.json and a copy of prototypes.yaml; returns out_dir."""
    if out_dir is None or out_dir.resolve() == data_dir.resolve():
        raise ValueError(f"--encoder {TRANSFORMER_ENCODER} needs --out DIR other than the data directory")
    from routeiq.routing.classifier.transformer_encoder import describe

    descriptor = describe()
    (out_dir / ENCODER_DIR).mkdir(parents=True, exist_ok=True)
    text = json.dumps(descriptor, indent=2, sort_keys=True) + "\n"
    (out_dir / ENCODER_DIR / ENCODER_DESCRIPTOR).write_text(text, encoding="utf-8")
    shutil.copyfile(data_dir / PROTOTYPES_FILE, out_dir / PROTOTYPES_FILE)
    return out_dir


def build(
    data_dir: Path = DEFAULT_DATA_DIR, out_dir: Path | None = None, encoder_kind: str = STATIC_ENCODER
) -> dict[str, Any]:
    """Write centroids.npz and metadata.json to out_dir (default: data_dir); returns the metadata.

    With the static encoder the encoder files and prototypes stay in data_dir (hashed from there);
    with ``sentence-transformers`` out_dir becomes a complete artifact directory of its own.
    """
    if encoder_kind not in ENCODER_KINDS:
        raise ValueError(f"unknown encoder kind {encoder_kind!r} (known: {', '.join(ENCODER_KINDS)})")
    out_dir = out_dir or data_dir
    prototypes = load_prototypes(data_dir / PROTOTYPES_FILE)
    encoder: PromptEncoder
    if encoder_kind == STATIC_ENCODER:
        source_dir = data_dir
        encoder = StaticEncoder.load(data_dir / ENCODER_DIR)
    else:
        source_dir = prepare_transformer_dir(data_dir, out_dir)
        encoder = load_encoder(source_dir / ENCODER_DIR)
    texts = [p.text for p in prototypes]
    embeddings = encoder.embed(texts)
    tiers = np.array([TIERS.index(p.tier) for p in prototypes])
    cats = np.array([CATEGORIES.index(p.category) for p in prototypes])

    center = embeddings.mean(axis=0).astype(np.float32)
    centred = centre(embeddings, center)
    features, predicted = out_of_fold(centred, text_sizes(texts), tiers, cats)
    weights, offset = fit_logistic(features, tiers)
    p_oof = 1.0 / (1.0 + np.exp(-(features @ weights + offset)))

    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(
        out_dir / CENTROIDS_FILE,
        center=center,
        tier_names=np.array(TIERS),
        prototype_embeddings=centred.astype(np.float16),
        prototype_tiers=tiers.astype(np.int8),
        tier_neighbours=np.array(TIER_NEIGHBOURS, dtype=np.int64),
        tier_calibration=np.array([*weights, offset], dtype=np.float64),
        category_names=np.array(CATEGORIES),
        category_centroids=class_centroids(centred, cats, len(CATEGORIES)),
        borderline_margin=np.array(DEFAULT_BORDERLINE_MARGIN, dtype=np.float64),
    )
    required = required_files(encoder_kind)
    files = {name: sha256_file(source_dir / name) for name in required if name != CENTROIDS_FILE}
    files[CENTROIDS_FILE] = sha256_file(out_dir / CENTROIDS_FILE)
    encoder_meta = json.loads((source_dir / ENCODER_DIR / ENCODER_DESCRIPTOR).read_text(encoding="utf-8"))
    per_class = Counter((p.category, p.tier) for p in prototypes)
    encoder_summary: dict[str, Any] = {
        "id": encoder.id,
        "dimension": encoder.dimension,
        "source": encoder_meta.get("source_model"),
    }
    if encoder_kind != STATIC_ENCODER:  # static stays implicit: the shipped metadata predates "kind"
        encoder_summary["kind"] = encoder_kind
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "builder": "routeiq.routing.classifier.build",
        "encoder": encoder_summary,
        "prototype_counts": {
            "tiers": {tier: int((tiers == i).sum()) for i, tier in enumerate(TIERS)},
            "categories": {cat: {tier: per_class[(cat, tier)] for tier in TIERS} for cat in CATEGORIES},
            "total": len(prototypes),
        },
        "calibration": {
            "tier_neighbours": TIER_NEIGHBOURS,
            "tier_weight_margin": round(float(weights[0]), 6),
            "tier_weight_log_chars": round(float(weights[1]), 6),
            "tier_offset": round(offset, 6),
            "borderline_margin": DEFAULT_BORDERLINE_MARGIN,
            "out_of_fold_tier_accuracy": round(float(((p_oof >= 0.5) == (tiers == 1)).mean()), 4),
            # Calibration, not just accuracy: the mean squared gap between p_strong and the tier (0/1).
            "out_of_fold_tier_brier": round(float(((p_oof - tiers) ** 2).mean()), 4),
            "out_of_fold_category_accuracy": round(float((predicted == cats).mean()), 4),
            "folds": FOLDS,
        },
        "files": dict(sorted(files.items())),
    }
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    (out_dir / METADATA_FILE).write_text(text, encoding="utf-8")
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the centroid classifier's centroids and metadata.")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="prototypes.yaml + encoder/")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: --data-dir)")
    parser.add_argument(
        "--encoder",
        choices=ENCODER_KINDS,
        default=STATIC_ENCODER,
        help=f"{STATIC_ENCODER} (shipped, torch-free) or {TRANSFORMER_ENCODER} "
        "(needs routeiq[transformers] and --out: writes a complete artifact directory there)",
    )
    args = parser.parse_args(argv)
    if args.encoder != STATIC_ENCODER and args.out is None:
        parser.error(f"--encoder {args.encoder} needs --out DIR (the shipped data directory stays static)")
    meta = build(args.data_dir, args.out, args.encoder)
    print(
        json.dumps(
            {"prototype_counts": meta["prototype_counts"], "calibration": meta["calibration"]}, indent=2
        )
    )


if __name__ == "__main__":
    main()
