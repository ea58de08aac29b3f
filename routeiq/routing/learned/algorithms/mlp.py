"""A small multi-layer perceptron: one ReLU hidden layer, a sigmoid per output, cross-entropy on soft targets.

Enough capacity to combine topic (the embedding) with surface cues non-linearly, small enough to
train in seconds with numpy. Initialisation and mini-batches come from the seed, and the best epoch on
a held-back slice of the training rows is kept (see ``optim``), so the same data and seed always give
the same weights.
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
    with_pair_column,
)
from routeiq.routing.learned.algorithms.optim import ADAM_PARAMETERS, AdamSettings, settings_from, train_adam

DEFAULTS = AdamSettings(learning_rate=2e-3, epochs=60, batch_size=128)


@dataclass(frozen=True)
class MlpScorer:
    algo: ClassVar[str] = "mlp"
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    hidden: int
    l2: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        hidden = np.maximum(features.astype(np.float64) @ self.w1 + self.b1, 0.0)
        return sigmoid(hidden @ self.w2 + self.b2)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": self.b2}

    def params(self) -> Params:
        return {"hidden": self.hidden, "l2": self.l2}


class Mlp:
    name = "mlp"
    parameters: ClassVar[tuple[str, ...]] = ("hidden", "l2", *ADAM_PARAMETERS)

    def adapt(self, params: Params, rows: int) -> tuple[Params, list[str]]:
        check_parameters(self.name, params, self.parameters)
        return keep_as_is(params, rows)

    def fit(
        self, features: np.ndarray, scores: np.ndarray, pair: Pair | None, seed: int, params: Params
    ) -> MlpScorer:
        check_parameters(self.name, params, self.parameters)
        hidden = int(params.get("hidden", 64))
        l2 = float(params.get("l2", 1e-4))
        x = features.astype(np.float64)
        targets = with_pair_column(scores, pair)
        rng = np.random.default_rng(seed)
        d, outputs = x.shape[1], targets.shape[1]
        weights = {
            "w1": rng.normal(0.0, np.sqrt(2.0 / d), (d, hidden)),
            "b1": np.zeros(hidden),
            "w2": rng.normal(0.0, np.sqrt(1.0 / hidden), (hidden, outputs)),
            "b2": np.log(
                targets.mean(axis=0).clip(1e-3, 1 - 1e-3) / (1 - targets.mean(axis=0).clip(1e-3, 1 - 1e-3))
            ),
        }

        def loss_and_grads(p: dict[str, np.ndarray], rows: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
            xb, tb = x[rows], targets[rows]
            pre = xb @ p["w1"] + p["b1"]
            h = np.maximum(pre, 0.0)
            prob = sigmoid(h @ p["w2"] + p["b2"])
            eps = 1e-7
            loss = -np.mean(tb * np.log(prob + eps) + (1 - tb) * np.log(1 - prob + eps))
            loss += l2 * (np.sum(p["w1"] ** 2) + np.sum(p["w2"] ** 2))
            dz = (prob - tb) / tb.size
            dh = (dz @ p["w2"].T) * (pre > 0)
            return float(loss), {
                "w2": h.T @ dz + 2 * l2 * p["w2"],
                "b2": dz.sum(axis=0),
                "w1": xb.T @ dh + 2 * l2 * p["w1"],
                "b1": dh.sum(axis=0),
            }

        best = train_adam(weights, loss_and_grads, x.shape[0], rng, settings_from(params, DEFAULTS))
        return MlpScorer(best["w1"], best["b1"], best["w2"], best["b2"], hidden, l2)

    def restore(self, arrays: dict[str, np.ndarray], params: Params) -> MlpScorer:
        w1, b1, w2, b2 = require(arrays, "w1", "b1", "w2", "b2")
        if b1.shape != (w1.shape[1],) or w2.shape[0] != w1.shape[1] or b2.shape != (w2.shape[1],):
            raise ValueError("mlp layer shapes do not chain")
        return MlpScorer(w1, b1, w2, b2, int(params["hidden"]), float(params["l2"]))
