"""Training a learned router from a dataset, and measuring it on data it never saw.

One function per step so the CLI, the benchmark and the tests compose them the same way: pick the
(weak, strong) pair, embed, fit, calibrate, evaluate. Embeddings can be passed in so a benchmark that
trains five algorithms embeds the data once.

Training says when the data does not support the parameters: the algorithm adapts them to the
number of rows (knn's ``k``, elo's clusters) and every change, like a router that scores every
prompt the same, is recorded in ``info.training["warnings"]`` for the CLI to print and the manifest
to keep. ``cross_validate`` measures the configuration on the training rows themselves (k-fold), so
even a small data set gets an honest AUROC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from routeiq.routing import quality
from routeiq.routing.learned.algorithms import Pair, algorithm
from routeiq.routing.learned.algorithms.base import with_pair_column
from routeiq.routing.learned.algorithms.knn import Knn
from routeiq.routing.learned.algorithms.linear import DEFAULT_FOLDS as LINEAR_FOLDS
from routeiq.routing.learned.algorithms.linear import choose_l2
from routeiq.routing.learned.dataset import DatasetError, RoutingDataset, split_fraction
from routeiq.routing.learned.encoder import Encoder, embed_in_batches
from routeiq.routing.learned.features import FeatureSpec
from routeiq.routing.learned.lexical import LexicalSpec
from routeiq.routing.learned.router import LearnedRouter, RouterInfo, calibration_curve

DEFAULT_FEATURE_WEIGHT = 0.35
# The surface cues' share of a knn router's distance (knn, and the ensemble's knn member): chosen per
# training set by knn's own 3-fold out-of-fold APGR on the training rows (the cues are standardised,
# so the weight only matters to distance-based algorithms; linear rescales every column itself).
FEATURE_WEIGHT_GRID = (0.35, 1.0, 2.0, 4.0)
CUE_SENSITIVE = ("knn", "ensemble")
# The lexical block (the prompt's words as LSA dimensions, ``lexical.py``): its weight is chosen per
# training set by out-of-fold APGR on the training rows, 0 (off) among the candidates. knn and the
# ensemble: by knn's own search at the chosen cue weight (the weight sets the block's share of the
# cosine); linear: on or off (it standardises every column, so only presence matters). The other
# algorithms do not use it. Rank 64: 8192 x 64 float32 components, 2 MB in the artifact.
LEXICAL_WEIGHT_GRID = (0.0, 0.5, 1.0)
LEXICAL_RANK = 64
LEXICAL_USERS = (*CUE_SENSITIVE, "linear")
DEFAULT_STRONG_FRACTION = 0.5
DEFAULT_CV_FOLDS = 5
CV_SALT = "routeiq-cv:"  # fold assignment must not line up with the train/test split's hash
# Below this many prompts where the strong model wins, what a router learns (and any AUROC of it) is
# mostly noise: say so rather than let a lucky number stand.
MIN_STRONG_WINS = 30


def choose_pair(dataset: RoutingDataset, weak: str | None = None, strong: str | None = None) -> Pair:
    """The (weak, strong) columns: as named, else the lowest- and highest-scoring models on average."""
    if len(dataset.models) < 2:
        raise DatasetError("routing needs at least two models in the data")
    means = dataset.scores.mean(axis=0)
    ranked = [dataset.models[i] for i in np.argsort(means, kind="stable")]
    weak_name = weak or next(model for model in ranked if model != strong)
    strong_name = strong or next(model for model in reversed(ranked) if model != weak_name)
    for name in (weak_name, strong_name):
        if name not in dataset.models:
            raise DatasetError(f"model {name!r} is not in the data (models: {', '.join(dataset.models)})")
    if weak_name == strong_name:
        raise DatasetError("the weak and the strong model must differ")
    return Pair(dataset.models.index(weak_name), dataset.models.index(strong_name))


def _score_range(scores: np.ndarray) -> tuple[float, float]:
    low, high = float(scores.min()), float(scores.max())
    if high <= low:
        raise DatasetError("every score is the same: there is nothing to learn")
    return low, high


def train_router(
    dataset: RoutingDataset,
    algo: str,
    encoder: Encoder,
    *,
    seed: int = 0,
    weak: str | None = None,
    strong: str | None = None,
    params: Mapping[str, Any] | None = None,
    feature_weight: float | None = None,
    lexical_weight: float | None = None,
    strong_fraction: float = DEFAULT_STRONG_FRACTION,
    embeddings: np.ndarray | None = None,
) -> LearnedRouter:
    """Fit ``algo`` on all of ``dataset`` (split beforehand) and calibrate its threshold on it.

    ``strong_fraction`` sets the default threshold: the p_strong above which that share of the
    training prompts would go to the strong model. ``feature_weight`` None: for knn and the ensemble,
    chosen by cross-validation on these rows (``choose_feature_weight``); else ``DEFAULT_FEATURE_WEIGHT``.
    ``lexical_weight`` None: for knn, the ensemble and linear, chosen the same way (0 = no lexical
    block); else 0 for the other algorithms.
    """
    if len(dataset) == 0:
        raise DatasetError("no training prompts")
    if not 0.0 <= strong_fraction <= 1.0:
        raise ValueError("strong_fraction must be in 0..1")
    pair = choose_pair(dataset, weak, strong)
    low, high = _score_range(dataset.scores)
    targets = (dataset.scores - low) / (high - low)
    method = algorithm(algo)
    fit_params, warnings = method.adapt(dict(params or {}), len(dataset))
    wins = int(quality.strong_wins(dataset.scores[:, pair.weak], dataset.scores[:, pair.strong]).sum())
    if wins < MIN_STRONG_WINS:
        warnings.append(
            f"only {wins} of the {len(dataset)} training prompts are ones where "
            f"{dataset.models[pair.strong]} beats {dataset.models[pair.weak]}: too few to learn from "
            f"reliably (aim for {MIN_STRONG_WINS} or more); treat the metrics as noise"
        )
    texts = list(dataset.prompts)
    vectors = embed_in_batches(encoder, texts) if embeddings is None else embeddings
    cue_search: list[dict[str, Any]] = []
    lexical_search: list[dict[str, Any]] = []
    if feature_weight is None:
        feature_weight = DEFAULT_FEATURE_WEIGHT
        if algo in CUE_SENSITIVE:
            feature_weight, cue_search = choose_feature_weight(texts, vectors, targets, pair, seed)
    spec = FeatureSpec.fit(texts, weight=feature_weight)
    searched = lexical_weight is None and algo in LEXICAL_USERS
    lexical = _fit_lexical(texts, seed) if searched or (lexical_weight or 0.0) > 0 else None
    if lexical_weight is not None and lexical_weight > 0 and lexical is None:
        warnings.append(
            f"{len(dataset)} training prompts are too few for the lexical block (a rank-{LEXICAL_RANK} "
            f"SVD needs {4 * LEXICAL_RANK}): training without it"
        )
    if lexical_weight is None:
        lexical_weight = 0.0
        if searched and lexical is not None:
            lexical_weight, lexical_search = choose_lexical_weight(
                algo, spec, lexical, texts, vectors, targets, pair, seed
            )
    spec = spec.with_lexical(lexical, lexical_weight)
    features = spec.transform(texts, vectors)
    scorer = method.fit(features, targets, pair, seed, fit_params)
    train_p_strong = scorer.predict(features)[:, -1].clip(0.0, 1.0)
    if np.ptp(train_p_strong) <= 1e-9:
        warnings.append(
            f"{algo} gives every one of the {len(dataset)} training prompts the same p_strong "
            f"({float(train_p_strong[0]):.4f}): it cannot tell prompts apart, so it cannot route "
            "(more data, or other --param values)"
        )
    info = RouterInfo(
        algo=algo,
        models=dataset.models,
        weak=dataset.models[pair.weak],
        strong=dataset.models[pair.strong],
        encoder_id=encoder.id,
        encoder_dimension=encoder.dimension,
        feature_weight=spec.weight,
        score_range=(low, high),
        threshold=float(np.quantile(train_p_strong, 1.0 - strong_fraction)),
        strong_fraction=strong_fraction,
        calibration=calibration_curve(train_p_strong),
        params=scorer.params(),
        seed=seed,
        training={**dataset.summary(), "warnings": warnings}
        | ({"feature_weight_cv": cue_search} if cue_search else {})
        | ({"lexical_weight_cv": lexical_search} if lexical_search else {}),
        lexical_weight=spec.lexical_weight,
    )
    return LearnedRouter(info, scorer, spec, encoder)


def choose_feature_weight(
    texts: list[str], vectors: np.ndarray, targets: np.ndarray, pair: Pair, seed: int
) -> tuple[float, list[dict[str, Any]]]:
    """The cue weight in ``FEATURE_WEIGHT_GRID`` whose knn has the best out-of-fold APGR on these rows.

    Each candidate runs knn's own k search (3-fold, training rows only) and is scored by its best k;
    ties go to the smaller weight. Too few rows for knn to search k: the default weight, no search.
    """
    knn = Knn()
    knn_params, _ = knn.adapt({}, len(texts))
    if "k" in knn_params:
        return DEFAULT_FEATURE_WEIGHT, []
    search: list[dict[str, Any]] = []
    for weight in FEATURE_WEIGHT_GRID:
        features = FeatureSpec.fit(texts, weight=weight).transform(texts, vectors)
        scorer = knn.fit(features, targets, pair, seed, knn_params)
        best = max(scorer.search, key=lambda row: row["cv_apgr"])
        search.append({"feature_weight": weight, "k": best["k"], "cv_apgr": best["cv_apgr"]})
    chosen = max(search, key=lambda row: (row["cv_apgr"], -row["feature_weight"]))
    return float(chosen["feature_weight"]), search


def _fit_lexical(texts: list[str], seed: int) -> LexicalSpec | None:
    """The LSA of the training prompts' words, or None when they are too few for its rank."""
    if len(texts) < 4 * LEXICAL_RANK:
        return None
    return LexicalSpec.fit(texts, rank=LEXICAL_RANK, weight=1.0, seed=seed)


def choose_lexical_weight(
    algo: str,
    spec: FeatureSpec,
    lexical: LexicalSpec,
    texts: list[str],
    vectors: np.ndarray,
    targets: np.ndarray,
    pair: Pair,
    seed: int,
) -> tuple[float, list[dict[str, Any]]]:
    """The lexical weight in ``LEXICAL_WEIGHT_GRID`` with the best out-of-fold APGR on these rows.

    knn and the ensemble: knn's own k search (3-fold) at ``spec``'s cue weight, scored by its best k;
    linear: its own L2 search, with the block (weight 1) or without. Ties go to the smaller weight
    (without words). Too few rows for the algorithm's own search: 0, no search.
    """
    search: list[dict[str, Any]] = []
    if algo == "linear":
        if len(texts) < 10 * LINEAR_FOLDS:
            return 0.0, []
        target = with_pair_column(targets, pair)[:, -1]
        for weight in (0.0, 1.0):
            features = spec.with_lexical(lexical, weight).transform(texts, vectors).astype(np.float64)
            l2, rows = choose_l2(features, target, LINEAR_FOLDS, seed)
            best = max(rows, key=lambda row: row["cv_apgr"])
            search.append({"lexical_weight": weight, "l2": l2, "cv_apgr": best["cv_apgr"]})
    else:
        knn = Knn()
        knn_params, _ = knn.adapt({}, len(texts))
        if "k" in knn_params:
            return 0.0, []
        for weight in LEXICAL_WEIGHT_GRID:
            features = spec.with_lexical(lexical, weight).transform(texts, vectors)
            scorer = knn.fit(features, targets, pair, seed, knn_params)
            best = max(scorer.search, key=lambda row: row["cv_apgr"])
            search.append({"lexical_weight": weight, "k": best["k"], "cv_apgr": best["cv_apgr"]})
    chosen = max(search, key=lambda row: (row["cv_apgr"], -row["lexical_weight"]))
    return float(chosen["lexical_weight"]), search


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Held-out routing quality of a router's p_strong, plus the two baselines for scale, and the
    router's APGR gain over prompt length with its paired bootstrap standard error (a gain within
    about two standard errors may be luck of the split)."""

    router: quality.RoutingQuality
    prompt_length: quality.RoutingQuality
    random: quality.RoutingQuality
    gain_over_length: float
    gain_standard_error: float

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        return {
            "router": self.router.as_dict(),
            "prompt_length": self.prompt_length.as_dict(),
            "random": self.random.as_dict(),
            "gain_over_length": {"apgr": self.gain_over_length, "standard_error": self.gain_standard_error},
        }


def evaluate_router(
    router: LearnedRouter, test: RoutingDataset, *, embeddings: np.ndarray | None = None, seed: int = 0
) -> Evaluation:
    """APGR, CPT(50%), CPT(80%) and AUROC of ``router`` on ``test`` (its weak/strong columns)."""
    if router.info.weak is None or router.info.strong is None:
        raise ValueError("evaluation needs a router with a (weak, strong) pair")
    texts = list(test.prompts)
    vectors = embed_in_batches(router.encoder, texts) if embeddings is None else embeddings
    prediction = router.predict_embeddings(texts, vectors)
    assert prediction.p_strong is not None
    weak, strong = test.column(router.info.weak), test.column(router.info.strong)
    lengths = np.array([len(text) for text in texts], dtype=np.float64)
    noise = np.random.default_rng(seed).random(len(texts))
    gain, spread = quality.apgr_difference(prediction.p_strong, lengths, weak, strong, seed=seed)
    return Evaluation(
        router=quality.evaluate(prediction.p_strong, weak, strong),
        prompt_length=quality.evaluate(lengths, weak, strong),
        random=quality.evaluate(noise, weak, strong),
        gain_over_length=gain,
        gain_standard_error=spread,
    )


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """Out-of-fold quality of one training configuration: every row scored by a router that never saw it.

    ``auroc`` pools the out-of-fold p_strong of all rows (positives: the strong model scores higher);
    ``fold_auroc`` is each fold's own, to show the spread. ``apgr`` is None when the rows have no
    weak-to-strong gap to recover, ``auroc`` None when no row (or every row) is a strong win.
    """

    folds: int
    rows: int
    auroc: float | None
    fold_auroc: tuple[float | None, ...]
    apgr: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "folds": self.folds,
            "rows": self.rows,
            "auroc": self.auroc,
            "fold_auroc": list(self.fold_auroc),
            "apgr": self.apgr,
        }


def fold_of(prompt: str, folds: int) -> int:
    """The prompt's fold, from its hash: the same on every run, and duplicates share a fold."""
    return min(folds - 1, int(split_fraction(prompt, CV_SALT) * folds))


def cross_validate(
    dataset: RoutingDataset,
    algo: str,
    encoder: Encoder,
    *,
    folds: int = DEFAULT_CV_FOLDS,
    seed: int = 0,
    weak: str | None = None,
    strong: str | None = None,
    params: Mapping[str, Any] | None = None,
    feature_weight: float | None = None,
    lexical_weight: float | None = None,
    embeddings: np.ndarray | None = None,
) -> CrossValidation:
    """k-fold cross-validation of ``train_router`` on ``dataset``: each fold scored by the others' router.

    The (weak, strong) pair is chosen once on all of ``dataset``, so every fold routes the same pair.
    A ``DatasetError`` when the data cannot be split into ``folds`` trainable parts.
    """
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    if len(dataset) < 2 * folds:
        raise DatasetError(f"{len(dataset)} prompts are too few for {folds}-fold cross-validation")
    pair = choose_pair(dataset, weak, strong)
    weak_name, strong_name = dataset.models[pair.weak], dataset.models[pair.strong]
    texts = list(dataset.prompts)
    vectors = embed_in_batches(encoder, texts) if embeddings is None else embeddings
    assignment = np.array([fold_of(text, folds) for text in texts])
    p_strong = np.empty(len(dataset), dtype=np.float64)
    wins = quality.strong_wins(dataset.column(weak_name), dataset.column(strong_name))
    fold_auroc: list[float | None] = []
    for fold in range(folds):
        held, kept = np.flatnonzero(assignment == fold), np.flatnonzero(assignment != fold)
        if held.size == 0:
            continue
        router = train_router(
            dataset.subset(kept),
            algo,
            encoder,
            seed=seed,
            weak=weak_name,
            strong=strong_name,
            params=params,
            feature_weight=feature_weight,
            lexical_weight=lexical_weight,
            embeddings=vectors[kept],
        )
        prediction = router.predict_embeddings([texts[i] for i in held], vectors[held])
        assert prediction.p_strong is not None
        p_strong[held] = prediction.p_strong
        fold_auroc.append(_auroc_or_none(p_strong[held], wins[held]))
    weak_scores, strong_scores = dataset.column(weak_name), dataset.column(strong_name)
    has_gap = float(strong_scores.sum()) > float(weak_scores.sum())
    return CrossValidation(
        folds=folds,
        rows=len(dataset),
        auroc=_auroc_or_none(p_strong, wins),
        fold_auroc=tuple(fold_auroc),
        apgr=quality.apgr(p_strong, weak_scores, strong_scores) if has_gap else None,
    )


def _auroc_or_none(scores: np.ndarray, wins: np.ndarray) -> float | None:
    """AUROC, or None when one class is missing (quality.auroc's 0.5 there would read as "random")."""
    if wins.all() or not wins.any():
        return None
    return quality.auroc(scores, wins)
