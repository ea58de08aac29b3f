"""k-nearest neighbours: a prompt is expected to go the way its most similar training prompts went.

No training beyond storing the (normalised) training features and their targets; prediction is the
mean target of the ``k`` most cosine-similar training prompts. Strong when the serving traffic looks
like the training data, and a useful sanity baseline for the parametric routers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from routeiq.routing.learned.algorithms.base import Pair, Params, check_parameters, require, with_pair_column

BATCH = 1024  # query rows per similarity block: bounds memory at BATCH x n_train floats
DEFAULT_K = 64
# A neighbourhood wider than this share of the training rows averages away what sets prompts apart;
# at k = every row, every prompt gets the same score.
MAX_K_FRACTION = 0.25


def _unit_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@dataclass(frozen=True)
class KnnScorer:
    algo: ClassVar[str] = "knn"
    points: np.ndarray  # (n_train, d) unit rows
    targets: np.ndarray  # (n_train, outputs)
    k: int

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
        return {"k": self.k}


def max_k(rows: int) -> int:
    return max(1, int(rows * MAX_K_FRACTION))


class Knn:
    name = "knn"
    parameters: ClassVar[tuple[str, ...]] = ("k",)

    def adapt(self, params: Params, rows: int) -> tuple[Params, list[str]]:
        check_parameters(self.name, params, self.parameters)
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
        k = int(params.get("k", DEFAULT_K))
        if k < 1:
            raise ValueError("k must be at least 1")
        targets = with_pair_column(scores, pair).astype(np.float32)
        return KnnScorer(_unit_rows(features), targets, k)

    def restore(self, arrays: dict[str, np.ndarray], params: Params) -> KnnScorer:
        points, targets = require(arrays, "points", "targets")
        if points.shape[0] != targets.shape[0]:
            raise ValueError("knn points and targets disagree on the number of rows")
        return KnnScorer(points.astype(np.float32), targets.astype(np.float32), int(params["k"]))
