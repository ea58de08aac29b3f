"""Bradley-Terry (Elo) ratings of the models, per cluster of similar prompts.

Each training prompt yields pairwise outcomes between the models (higher score wins, ties half).
Prompts are grouped by spherical k-means; every cluster gets its own ratings, fitted by Newton's
method on the Bradley-Terry likelihood and shrunk toward the global ratings (a cluster with little
data says little). A new prompt is softly assigned to clusters by similarity, its ratings are the
weighted mix, and ``p_strong = sigmoid(r_strong - r_weak)``. Ratings are in natural-log odds units
(multiply by 400 / ln 10 for the chess Elo scale). The same idea as RouteLLM's similarity-weighted
ranking router, at cluster rather than prompt granularity so serving stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from routeiq.routing.learned.algorithms.base import Pair, Params, check_parameters, require, sigmoid

DEFAULT_CLUSTERS = 24
# Fewer prompts than this per cluster and a cluster's ratings are mostly the prior: more clusters
# only add noise and serving cost.
MIN_ROWS_PER_CLUSTER = 10


def _unit_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1.0)


def spherical_kmeans(
    points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 25
) -> np.ndarray:
    """Unit-norm centroids of ``k`` clusters (k-means++ seeding, cosine similarity)."""
    n = points.shape[0]
    k = min(k, n)
    centroids = [points[int(rng.integers(n))]]
    closest = 1.0 - points @ centroids[0]
    for _ in range(1, k):
        weights = np.maximum(closest, 0.0)
        total = weights.sum()
        index = int(rng.choice(n, p=weights / total)) if total > 0 else int(rng.integers(n))
        centroids.append(points[index])
        closest = np.minimum(closest, 1.0 - points @ points[index])
    centers = np.stack(centroids)
    for _ in range(iterations):
        assignment = np.argmax(points @ centers.T, axis=1)
        updated = centers.copy()
        for cluster in range(k):
            members = points[assignment == cluster]
            if members.size:
                updated[cluster] = members.sum(axis=0)
        updated = _unit_rows(updated)
        if np.allclose(updated, centers):
            break
        centers = updated
    return centers


def memberships(points: np.ndarray, centers: np.ndarray, temperature: float) -> np.ndarray:
    """Soft cluster weights per row: a softmax of cosine similarity over ``temperature``."""
    logits = (_unit_rows(points) @ centers.T) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def fit_bradley_terry(wins: np.ndarray, games: np.ndarray, prior: np.ndarray, strength: float) -> np.ndarray:
    """Ratings maximising the BT likelihood of ``wins[i, j]`` out of ``games[i, j]``, pulled to ``prior``."""
    ratings = prior.copy()
    for _ in range(50):
        p = sigmoid(ratings[:, None] - ratings[None, :])
        gradient = (games * p - wins).sum(axis=1) + 2 * strength * (ratings - prior)
        curvature = games * p * (1 - p)
        hessian = -curvature
        np.fill_diagonal(hessian, curvature.sum(axis=1) - np.diag(curvature) + 2 * strength)
        step = np.linalg.solve(hessian, gradient)
        ratings -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return ratings


def pairwise_outcomes(scores: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted wins (ties half) and games between every pair of models, each row weighted."""
    higher = (scores[:, :, None] > scores[:, None, :]).astype(np.float64)
    tied = (scores[:, :, None] == scores[:, None, :]).astype(np.float64)
    outcome = higher + 0.5 * tied
    wins = np.einsum("n,nij->ij", weights, outcome)
    games = np.full_like(wins, weights.sum())
    np.fill_diagonal(wins, 0.0)
    np.fill_diagonal(games, 0.0)
    return wins, games


@dataclass(frozen=True)
class EloScorer:
    algo: ClassVar[str] = "elo"
    centers: np.ndarray  # (clusters, d)
    ratings: np.ndarray  # (clusters, models)
    pair: np.ndarray  # (2,) weak, strong, or (0,)
    temperature: float
    clusters: int
    prior: float

    def prompt_ratings(self, features: np.ndarray) -> np.ndarray:
        return memberships(features.astype(np.float64), self.centers, self.temperature) @ self.ratings

    def predict(self, features: np.ndarray) -> np.ndarray:
        ratings = self.prompt_ratings(features)
        n_models = ratings.shape[1]
        versus = sigmoid(ratings[:, :, None] - ratings[:, None, :])
        per_model = (
            (versus.sum(axis=2) - 0.5) / (n_models - 1) if n_models > 1 else np.full_like(ratings, 0.5)
        )
        if self.pair.size == 2:
            weak, strong = int(self.pair[0]), int(self.pair[1])
            per_model = np.hstack([per_model, sigmoid(ratings[:, strong] - ratings[:, weak])[:, None]])
        return per_model

    def arrays(self) -> dict[str, np.ndarray]:
        return {"centers": self.centers, "ratings": self.ratings, "pair": self.pair}

    def params(self) -> Params:
        return {"temperature": self.temperature, "clusters": self.clusters, "prior": self.prior}


class Elo:
    name = "elo"
    parameters: ClassVar[tuple[str, ...]] = ("clusters", "temperature", "prior")

    def adapt(self, params: Params, rows: int) -> tuple[Params, list[str]]:
        check_parameters(self.name, params, self.parameters)
        clusters, limit = int(params.get("clusters", DEFAULT_CLUSTERS)), max(1, rows // MIN_ROWS_PER_CLUSTER)
        if clusters <= limit:
            return dict(params), []
        note = (
            f"elo clusters={clusters} leaves fewer than {MIN_ROWS_PER_CLUSTER} of the {rows} training "
            f"prompts per cluster: using clusters={limit}"
        )
        return {**params, "clusters": limit}, [note]

    def fit(
        self, features: np.ndarray, scores: np.ndarray, pair: Pair | None, seed: int, params: Params
    ) -> EloScorer:
        check_parameters(self.name, params, self.parameters)
        clusters = int(params.get("clusters", DEFAULT_CLUSTERS))
        temperature = float(params.get("temperature", 0.05))
        prior = float(params.get("prior", 20.0))
        rng = np.random.default_rng(seed)
        points = _unit_rows(features.astype(np.float64))
        n_models = scores.shape[1]
        wins, games = pairwise_outcomes(scores, np.ones(scores.shape[0]))
        global_ratings = fit_bradley_terry(wins, games, np.zeros(n_models), 1e-3)
        centers = spherical_kmeans(points, clusters, rng)
        weights = memberships(points, centers, temperature)
        ratings = np.stack(
            [
                fit_bradley_terry(*pairwise_outcomes(scores, weights[:, cluster]), global_ratings, prior)
                for cluster in range(centers.shape[0])
            ]
        )
        indices = np.array([pair.weak, pair.strong] if pair else [], dtype=np.int64)
        return EloScorer(centers, ratings, indices, temperature, clusters, prior)

    def restore(self, arrays: dict[str, np.ndarray], params: Params) -> EloScorer:
        centers, ratings, pair = require(arrays, "centers", "ratings", "pair")
        if centers.shape[0] != ratings.shape[0]:
            raise ValueError("elo centers and ratings disagree on the number of clusters")
        if pair.size not in (0, 2) or (
            pair.size == 2 and not np.all((pair >= 0) & (pair < ratings.shape[1]))
        ):
            raise ValueError("elo pair indices are out of range")
        return EloScorer(
            centers,
            ratings,
            pair.astype(np.int64),
            float(params["temperature"]),
            int(params["clusters"]),
            float(params["prior"]),
        )
