"""Matrix factorisation in the RouteLLM spirit: prompts and models meet in a small learned space.

A prompt's features are projected to ``rank`` dimensions (``P x``); each model has a learned vector
``v_m`` and bias ``b_m``; the model's logit for the prompt is ``v_m · P x + b_m``. The per-model outputs
are ``sigmoid(logit)`` (trained against each model's outcome) and, for a (weak, strong) pair,
``p_strong = sigmoid(logit_strong - logit_weak)`` trained against "the strong model wins, ties half":
the Bradley-Terry form RouteLLM's MF router uses, so scores stay comparable across models and new
models only add a vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from routeiq.routing.learned.algorithms.base import (
    Pair,
    Params,
    check_parameters,
    keep_as_is,
    require,
    sigmoid,
)
from routeiq.routing.learned.algorithms.optim import ADAM_PARAMETERS, AdamSettings, settings_from, train_adam

DEFAULTS = AdamSettings(learning_rate=3e-3, epochs=60, batch_size=128)


@dataclass(frozen=True)
class MfScorer:
    algo: ClassVar[str] = "mf"
    projection: np.ndarray  # (d, rank)
    model_vectors: np.ndarray  # (models, rank)
    model_bias: np.ndarray  # (models,)
    pair: np.ndarray  # (2,) weak, strong indices, or (0,) when no pair was named
    rank: int
    l2: float
    pair_weight: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        return (features.astype(np.float64) @ self.projection) @ self.model_vectors.T + self.model_bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        logits = self.logits(features)
        out = sigmoid(logits)
        if self.pair.size == 2:
            weak, strong = int(self.pair[0]), int(self.pair[1])
            out = np.hstack([out, sigmoid(logits[:, strong] - logits[:, weak])[:, None]])
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "projection": self.projection,
            "model_vectors": self.model_vectors,
            "model_bias": self.model_bias,
            "pair": self.pair,
        }

    def params(self) -> Params:
        return {"rank": self.rank, "l2": self.l2, "pair_weight": self.pair_weight}


class Mf:
    name = "mf"
    parameters: ClassVar[tuple[str, ...]] = ("rank", "l2", "pair_weight", *ADAM_PARAMETERS)

    def adapt(self, params: Params, rows: int) -> tuple[Params, list[str]]:
        check_parameters(self.name, params, self.parameters)
        return keep_as_is(params, rows)

    def fit(
        self, features: np.ndarray, scores: np.ndarray, pair: Pair | None, seed: int, params: Params
    ) -> MfScorer:
        check_parameters(self.name, params, self.parameters)
        rank = int(params.get("rank", 32))
        l2 = float(params.get("l2", 1e-4))
        pair_weight = float(params.get("pair_weight", 1.0)) if pair else 0.0
        x = features.astype(np.float64)
        rng = np.random.default_rng(seed)
        n_models = scores.shape[1]
        mean = scores.mean(axis=0).clip(1e-3, 1 - 1e-3)
        weights = {
            "projection": rng.normal(0.0, 1.0 / np.sqrt(x.shape[1]), (x.shape[1], rank)),
            "model_vectors": rng.normal(0.0, 1.0 / np.sqrt(rank), (n_models, rank)),
            "model_bias": np.log(mean / (1 - mean)),
        }
        pair_target = (1.0 + scores[:, pair.strong] - scores[:, pair.weak]) / 2.0 if pair else None
        eps = 1e-7

        def loss_and_grads(p: dict[str, np.ndarray], rows: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
            xb, tb = x[rows], scores[rows]
            projected = xb @ p["projection"]  # (b, rank)
            logits = projected @ p["model_vectors"].T + p["model_bias"]
            prob = sigmoid(logits)
            loss = -np.mean(tb * np.log(prob + eps) + (1 - tb) * np.log(1 - prob + eps))
            d_logits = (prob - tb) / tb.size
            if pair is not None and pair_target is not None:
                pt = pair_target[rows]
                pp = sigmoid(logits[:, pair.strong] - logits[:, pair.weak])
                loss += pair_weight * -np.mean(pt * np.log(pp + eps) + (1 - pt) * np.log(1 - pp + eps))
                d_pair = pair_weight * (pp - pt) / pt.size
                d_logits[:, pair.strong] += d_pair
                d_logits[:, pair.weak] -= d_pair
            loss += l2 * (np.sum(p["projection"] ** 2) + np.sum(p["model_vectors"] ** 2))
            d_projected = d_logits @ p["model_vectors"]
            return float(loss), {
                "projection": xb.T @ d_projected + 2 * l2 * p["projection"],
                "model_vectors": d_logits.T @ projected + 2 * l2 * p["model_vectors"],
                "model_bias": d_logits.sum(axis=0),
            }

        best = train_adam(weights, loss_and_grads, x.shape[0], rng, settings_from(params, DEFAULTS))
        indices = np.array([pair.weak, pair.strong] if pair else [], dtype=np.int64)
        return MfScorer(
            best["projection"], best["model_vectors"], best["model_bias"], indices, rank, l2, pair_weight
        )

    def restore(self, arrays: dict[str, np.ndarray], params: Params) -> MfScorer:
        projection, vectors, bias, pair = require(arrays, "projection", "model_vectors", "model_bias", "pair")
        if projection.shape[1] != vectors.shape[1] or bias.shape != (vectors.shape[0],):
            raise ValueError("mf projection, model vectors and biases disagree on shapes")
        if pair.size not in (0, 2) or (
            pair.size == 2 and not np.all((pair >= 0) & (pair < vectors.shape[0]))
        ):
            raise ValueError("mf pair indices are out of range")
        return MfScorer(
            projection,
            vectors,
            bias,
            pair.astype(np.int64),
            int(params["rank"]),
            float(params["l2"]),
            float(params["pair_weight"]),
        )
