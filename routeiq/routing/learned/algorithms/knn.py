"""k-nearest neighbours: a prompt is expected to go the way its most similar training prompts went.

No training beyond storing the (normalised) training features and their targets; prediction is the
mean target of the ``k`` most cosine-similar training prompts. Strong when the serving traffic looks
like the training data, and a useful sanity baseline for the parametric routers.

Unless ``--param k=...`` fixes it, ``k`` is chosen by cross-validation on the training rows only:
each fold's rows are scored by their neighbours among the other folds for every candidate ``k`` at
once (one similarity pass, then running means over the sorted neighbours), and the ``k`` with the best
out-of-fold APGR of the routed column (AUROC without a pair) wins; every candidate's score is kept
in ``params["cv"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from routeiq.routing.learned.algorithms.base import (
    Pair,
    Params,
    check_parameters,
    ranking_quality,
    require,
    with_pair_column,
)

BATCH = 1024  # query rows per similarity block: bounds memory at BATCH x n_train floats
DEFAULT_K = 64
# A neighbourhood wider than this share of the training rows averages away what sets prompts apart;
# at k = every row, every prompt gets the same score.
MAX_K_FRACTION = 0.25
K_GRID = (16, 32, 64, 128, 256)
CV_FOLDS = 3


def _unit_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@dataclass(frozen=True)
class KnnScorer:
    algo: ClassVar[str] = "knn"
    points: np.ndarray  # (n_train, d) unit rows
    targets: np.ndarray  # (n_train, outputs)
    k: int
    search: tuple[dict[str, Any], ...] = ()

    def predict(self, features: np.ndarray) -> np.ndarray:
        queries = _unit_rows(features)
        k = min(self.k, self.points.shape[0])
        out = np.empty((queries.shape[0], self.targets.shape[1]), dtype=np.float64)
        for start in range(0, queries.shape[0], BATCH):
            similarity = queries[start : start + BATCH] @ self.points.T
            nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
            out[start : start + BATCH] = self.targets[nearest].mean(axis=1)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"points": self.points, "targets": self.targets}

    def params(self) -> Params:
        out: Params = {"k": self.k}
        if self.search:
            out["cv"] = list(self.search)
        return out


def max_k(rows: int) -> int:
    return max(1, int(rows * MAX_K_FRACTION))


def choose_k(
    points: np.ndarray, target: np.ndarray, seed: int, paired: bool = True
) -> tuple[int, list[dict[str, Any]]]:
    """The grid's ``k`` (those a fold's training rows allow) with the best out-of-fold APGR (for a
    pair; else AUROC): see ``ranking_quality``."""
    n = len(points)
    assignment = np.empty(n, dtype=np.int64)
    assignment[np.random.default_rng(seed).permutation(n)] = np.arange(n) % CV_FOLDS
    limit = max_k(int(n * (CV_FOLDS - 1) / CV_FOLDS))
    grid = [k for k in K_GRID if k <= limit] or [limit]
    widest = max(grid)
    scores = np.empty((len(grid), n))
    for fold in range(CV_FOLDS):
        held, kept = np.flatnonzero(assignment == fold), np.flatnonzero(assignment != fold)
        for start in range(0, held.size, BATCH):
            rows = held[start : start + BATCH]
            similarity = points[rows] @ points[kept].T
            nearest = np.argpartition(-similarity, widest - 1, axis=1)[:, :widest]
            order = np.argsort(-np.take_along_axis(similarity, nearest, axis=1), axis=1)
            ranked = target[kept][np.take_along_axis(nearest, order, axis=1)]
            running = np.cumsum(ranked, axis=1)
            for index, k in enumerate(grid):
                scores[index, rows] = running[:, k - 1] / k
    search = []
    for i, k in enumerate(grid):
        apgr, auroc = ranking_quality(scores[i], target, paired)
        search.append({"k": k, "cv_apgr": round(apgr, 4), "cv_auroc": round(auroc, 4)})
    best = max(search, key=lambda row: (row["cv_apgr"], row["k"]))
    return int(best["k"]), search


class Knn:
    name = "knn"
    parameters: ClassVar[tuple[str, ...]] = ("k",)

    def adapt(self, params: Params, rows: int) -> tuple[Params, list[str]]:
        check_parameters(self.name, params, self.parameters)
        if "k" not in params and rows < 4 * CV_FOLDS * min(K_GRID):
            params = {**params, "k": DEFAULT_K}  # too few rows to cross-validate k: the default, clamped
        if "k" not in params:
            return dict(params), []
        k, limit = int(params.get("k", DEFAULT_K)), max_k(rows)
        if k <= limit:
            return dict(params), []
        note = (
            f"knn k={k} is more than a quarter of the {rows} training prompts (every prompt would be "
            f"scored by most of the data alike): using k={limit}"
        )
        return {**params, "k": limit}, [note]

    def fit(
        self, features: np.ndarray, scores: np.ndarray, pair: Pair | None, seed: int, params: Params
    ) -> KnnScorer:
        check_parameters(self.name, params, self.parameters)
        targets = with_pair_column(scores, pair).astype(np.float32)
        points = _unit_rows(features)
        search: list[dict[str, Any]] = []
        if "k" in params:
            k = int(params["k"])
        else:
            k, search = choose_k(points, targets[:, -1], seed, pair is not None)
        if k < 1:
            raise ValueError("k must be at least 1")
        return KnnScorer(points, targets, k, tuple(search))

    def restore(self, arrays: dict[str, np.ndarray], params: Params) -> KnnScorer:
        points, targets = require(arrays, "points", "targets")
        if points.shape[0] != targets.shape[0]:
            raise ValueError("knn points and targets disagree on the number of rows")
        search = tuple(params.get("cv", ()))
        return KnnScorer(points.astype(np.float32), targets.astype(np.float32), int(params["k"]), search)
