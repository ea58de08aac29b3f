"""The trained answer verifier a cascade asks: how likely is the cheap model's answer to be right?

Trained on (prompt, cheap answer, was it correct) triples (``routeiq train --algo verifier``; the GSM8K
half in ``data/benchmarks`` carries the weak model's full answers). The model is a class-balanced
logistic regression on the standardised cues of ``verifier_features`` (the same fit as the ``linear``
router, L2 chosen by cross-validation on the training triples only), so it is numpy-only, torch-free
and fast. Its artifact is a directory like a router's: ``weights.npz`` (numeric arrays, read without
pickle) and ``manifest.json`` (format ``routeiq-answer-verifier``, the feature names, the L2 search,
the sha256 of the weights), optionally HMAC-signed; loading verifies before it trusts anything.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routeiq import __version__
from routeiq.routing import quality
from routeiq.routing.classifier.artifacts import sha256_file
from routeiq.routing.learned.algorithms.base import sigmoid
from routeiq.routing.learned.algorithms.linear import choose_l2, fit_weighted_logistic, standardisation
from routeiq.routing.learned.artifacts import (
    HMAC_FILE,
    MANIFEST,
    WEIGHTS,
    ArtifactError,
    hmac_hex,
    read_arrays,
    replace_directory,
    verify_files,
    verify_signatures,
)
from routeiq.routing.learned.dataset import split_fraction
from routeiq.routing.learned.verifier_features import VERIFIER_FEATURES, verifier_cues

VERIFIER_FORMAT = "routeiq-answer-verifier"
VERIFIER_FORMAT_VERSION = 1
CV_SALT = "routeiq-verifier-cv:"
DEFAULT_FOLDS = 3


@dataclass(frozen=True)
class AnswerVerifier:
    """A fitted verifier: ``p_correct(prompts, answers)`` in [0, 1], higher = more likely right."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    l2: float
    search: tuple[dict[str, Any], ...] = ()
    training: dict[str, Any] = field(default_factory=dict)

    def p_correct(self, prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        cues = verifier_cues(prompts, answers)
        return np.asarray(sigmoid(((cues - self.mean) * self.scale) @ self.weights + self.bias))


def train_verifier(
    prompts: Sequence[str],
    answers: Sequence[str],
    correct: np.ndarray,
    *,
    seed: int = 0,
    folds: int = DEFAULT_FOLDS,
    l2: float | None = None,
) -> AnswerVerifier:
    """Fit on every triple given (split beforehand); ``l2`` None searches it by ``folds``-fold CV here."""
    if len(prompts) != len(answers) or len(prompts) != len(correct):
        raise ValueError("one answer and one correctness label per prompt")
    labels = np.asarray(correct, dtype=np.float64)
    if labels.min() == labels.max():
        raise ValueError("every answer is labelled the same: a verifier needs right and wrong answers")
    cues = verifier_cues(prompts, answers)
    search: list[dict[str, Any]] = []
    if l2 is None:
        l2, search = choose_l2(cues, labels, folds, seed)
    mean, scale = standardisation(cues)
    weights, bias = fit_weighted_logistic((cues - mean) * scale, labels, l2)
    training = {"answers": len(prompts), "correct_share": round(float(labels.mean()), 4)}
    return AnswerVerifier(mean, scale, weights, bias, float(l2), tuple(search), training)


def verifier_fold(prompt: str, folds: int) -> int:
    """The prompt's cross-validation fold, from its hash (stable across runs and machines)."""
    return min(folds - 1, int(split_fraction(prompt, CV_SALT) * folds))


def out_of_fold(
    prompts: Sequence[str], answers: Sequence[str], correct: np.ndarray, *, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Every triple's p_correct from a verifier trained (L2 search included) on the other folds only."""
    assignment = np.array([verifier_fold(prompt, folds) for prompt in prompts])
    out = np.empty(len(prompts), dtype=np.float64)
    for fold in range(folds):
        held = np.flatnonzero(assignment == fold).tolist()
        kept = np.flatnonzero(assignment != fold).tolist()
        if not held:
            continue
        verifier = train_verifier(
            [prompts[i] for i in kept], [answers[i] for i in kept], correct[kept], seed=seed
        )
        out[held] = verifier.p_correct([prompts[i] for i in held], [answers[i] for i in held])
    return out


def verifier_auroc(p_correct: np.ndarray, correct: np.ndarray) -> float:
    """How well p_correct ranks right answers above wrong ones (0.5 = no better than chance)."""
    return quality.auroc(p_correct, np.asarray(correct, dtype=bool))


def save_verifier(
    verifier: AnswerVerifier, directory: Path | str, *, hmac_key: bytes | str | None = None
) -> Path:
    """Write the artifact atomically (a temporary sibling renamed into place)."""
    target = Path(directory).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        with (staging / WEIGHTS).open("wb") as handle:
            np.savez(
                handle,
                mean=verifier.mean,
                scale=verifier.scale,
                weights=verifier.weights,
                bias=np.array(verifier.bias),
            )
        manifest = {
            "format": VERIFIER_FORMAT,
            "format_version": VERIFIER_FORMAT_VERSION,
            "features": list(VERIFIER_FEATURES),
            "l2": verifier.l2,
            "cv": list(verifier.search),
            "training": verifier.training,
            "created_by": f"routeiq {__version__}",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {WEIGHTS: sha256_file(staging / WEIGHTS)},
        }
        raw = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
        (staging / MANIFEST).write_bytes(raw)
        if hmac_key is not None:
            (staging / HMAC_FILE).write_text(hmac_hex(raw, hmac_key) + "\n")
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_verifier(directory: Path | str, *, hmac_key: bytes | str | None = None) -> AnswerVerifier:
    """Verify (format, signature when a key is given, file hashes, numeric arrays, shapes), then load."""
    path = Path(directory)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{path}: no {MANIFEST} (not a verifier artifact)")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{manifest_path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != VERIFIER_FORMAT:
        raise ArtifactError(f"{manifest_path}: not a {VERIFIER_FORMAT} manifest")
    if manifest.get("format_version") != VERIFIER_FORMAT_VERSION:
        raise ArtifactError(
            f"{manifest_path}: format version {manifest.get('format_version')} (this build reads 1)"
        )
    if manifest.get("features") != list(VERIFIER_FEATURES):
        raise ArtifactError(f"{manifest_path}: built on other features than this build computes")
    verify_signatures(path, raw, hmac_key, None)
    verify_files(path, manifest)
    arrays = read_arrays(path / WEIGHTS)
    width = len(VERIFIER_FEATURES)
    try:
        mean, scale, weights, bias = (arrays[name] for name in ("mean", "scale", "weights", "bias"))
    except KeyError as error:
        raise ArtifactError(f"{path}: {WEIGHTS} lacks array {error}") from None
    if mean.shape != (width,) or scale.shape != (width,) or weights.shape != (width,) or bias.shape != ():
        raise ArtifactError(f"{path}: verifier arrays do not match its {width} features")
    return AnswerVerifier(
        mean.astype(np.float64),
        scale.astype(np.float64),
        weights.astype(np.float64),
        float(bias),
        float(manifest["l2"]),
        tuple(manifest.get("cv", ())),
        dict(manifest.get("training", {})),
    )
