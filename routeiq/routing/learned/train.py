"""Training a learned router from a dataset, and measuring it on data it never saw.

One function per step so the CLI, the benchmark and the tests compose them the same way: pick the
(weak, strong) pair, embed, fit, calibrate, evaluate. Embeddings can be passed in so a benchmark that
trains five algorithms embeds the data once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from routeiq.routing import quality
from routeiq.routing.learned.algorithms import Pair, algorithm
from routeiq.routing.learned.dataset import DatasetError, RoutingDataset
from routeiq.routing.learned.encoder import Encoder, embed_in_batches
from routeiq.routing.learned.features import FeatureSpec
from routeiq.routing.learned.router import LearnedRouter, RouterInfo, calibration_curve

DEFAULT_FEATURE_WEIGHT = 0.35
DEFAULT_STRONG_FRACTION = 0.5


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
    feature_weight: float = DEFAULT_FEATURE_WEIGHT,
    strong_fraction: float = DEFAULT_STRONG_FRACTION,
    embeddings: np.ndarray | None = None,
) -> LearnedRouter:
    """Fit ``algo`` on all of ``dataset`` (split beforehand) and calibrate its threshold on it.

    ``strong_fraction`` sets the default threshold: the p_strong above which that share of the
    training prompts would go to the strong model.
    """
    if len(dataset) == 0:
        raise DatasetError("no training prompts")
    if not 0.0 <= strong_fraction <= 1.0:
        raise ValueError("strong_fraction must be in 0..1")
    pair = choose_pair(dataset, weak, strong)
    low, high = _score_range(dataset.scores)
    targets = (dataset.scores - low) / (high - low)
    texts = list(dataset.prompts)
    vectors = embed_in_batches(encoder, texts) if embeddings is None else embeddings
    spec = FeatureSpec.fit(texts, weight=feature_weight)
    features = spec.transform(texts, vectors)
    scorer = algorithm(algo).fit(features, targets, pair, seed, dict(params or {}))
    train_p_strong = scorer.predict(features)[:, -1].clip(0.0, 1.0)
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
        training=dataset.summary(),
    )
    return LearnedRouter(info, scorer, spec, encoder)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Held-out routing quality of a router's p_strong, plus the two baselines for scale."""

    router: quality.RoutingQuality
    prompt_length: quality.RoutingQuality
    random: quality.RoutingQuality

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        return {
            "router": self.router.as_dict(),
            "prompt_length": self.prompt_length.as_dict(),
            "random": self.random.as_dict(),
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
    return Evaluation(
        router=quality.evaluate(prediction.p_strong, weak, strong),
        prompt_length=quality.evaluate(lengths, weak, strong),
        random=quality.evaluate(noise, weak, strong),
    )
