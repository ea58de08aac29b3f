"""Linear SVM: one squared-hinge classifier per output, with Platt scaling to turn margins into probabilities.

Each output (a model's "did well" and, for a pair, "the strong model wins") is a binary label (target
above 0.5). Classes are weighted to balance, because "the strong model wins" is the minority and an
unweighted hinge would learn to say "no" everywhere. Trained full-batch (deterministic, no seed
dependence beyond ties) with Adam on the smooth squared hinge plus L2; then a two-parameter logistic
fit per output maps margins to probabilities on the training rows.
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


@dataclass(frozen=True)
class SvmScorer:
    algo: ClassVar[str] = "svm"
    weights: np.ndarray  # (d, outputs)
    bias: np.ndarray  # (outputs,)
    platt: np.ndarray  # (2, outputs): slope, intercept
    l2: float

    def margins(self, features: np.ndarray) -> np.ndarray:
        return features.astype(np.float64) @ self.weights + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        return sigmoid(self.margins(features) * self.platt[0] + self.platt[1])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "bias": self.bias, "platt": self.platt}

    def params(self) -> Params:
        return {"l2": self.l2}


def _fit_hinge(
    x: np.ndarray, labels: np.ndarray, l2: float, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    """Squared hinge + L2, all outputs at once; labels are +-1 of shape (n, outputs)."""
    n, d = x.shape
    positives = (labels > 0).mean(axis=0).clip(1e-3, 1 - 1e-3)
    sample_weight = np.where(labels > 0, 0.5 / positives, 0.5 / (1 - positives))
    weights = np.zeros((d, labels.shape[1]))
    bias = np.zeros(labels.shape[1])
    m1w, m2w = np.zeros_like(weights), np.zeros_like(weights)
    m1b, m2b = np.zeros_like(bias), np.zeros_like(bias)
    rate, beta1, beta2 = 0.05, 0.9, 0.999
    for step in range(1, iterations + 1):
        slack = np.maximum(0.0, 1.0 - labels * (x @ weights + bias))
        coefficient = -2.0 * sample_weight * slack * labels / n
        grad_w = x.T @ coefficient + 2.0 * l2 * weights
        grad_b = coefficient.sum(axis=0)
        m1w = beta1 * m1w + (1 - beta1) * grad_w
        m2w = beta2 * m2w + (1 - beta2) * grad_w**2
        m1b = beta1 * m1b + (1 - beta1) * grad_b
        m2b = beta2 * m2b + (1 - beta2) * grad_b**2
        correction1, correction2 = 1 - beta1**step, 1 - beta2**step
        weights -= rate * (m1w / correction1) / (np.sqrt(m2w / correction2) + 1e-8)
        bias -= rate * (m1b / correction1) / (np.sqrt(m2b / correction2) + 1e-8)
    return weights, bias


def _fit_platt(margins: np.ndarray, targets: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Per output, (a, b) minimising cross-entropy of sigmoid(a * margin + b) against the soft targets."""
    out = np.zeros((2, margins.shape[1]))
    for column in range(margins.shape[1]):
        f, t = margins[:, column], targets[:, column]
        a, b = 1.0, 0.0
        for _ in range(iterations):  # Newton steps on a 2-parameter convex problem
            p = sigmoid(a * f + b)
            residual = p - t
            curvature = np.maximum(p * (1 - p), 1e-9)
            gradient = np.array([residual @ f, residual.sum()])
            hessian = np.array(
                [[curvature @ (f * f), curvature @ f], [curvature @ f, curvature.sum()]]
            ) + 1e-6 * np.eye(2)
            a, b = np.array([a, b]) - np.linalg.solve(hessian, gradient)
        out[:, column] = (a, b)
    return out


class Svm:
    name = "svm"
    parameters: ClassVar[tuple[str, ...]] = ("l2", "iterations")

    def adapt(self, params: Params, rows: int) -> tuple[Params, list[str]]:
        check_parameters(self.name, params, self.parameters)
        return keep_as_is(params, rows)

    def fit(
        self, features: np.ndarray, scores: np.ndarray, pair: Pair | None, seed: int, params: Params
    ) -> SvmScorer:
        check_parameters(self.name, params, self.parameters)
        l2 = float(params.get("l2", 1e-3))
        iterations = int(params.get("iterations", 400))
        x = features.astype(np.float64)
        targets = with_pair_column(scores, pair)
        labels = np.where(targets > 0.5, 1.0, -1.0)
        weights, bias = _fit_hinge(x, labels, l2, iterations)
        platt = _fit_platt(x @ weights + bias, targets)
        return SvmScorer(weights, bias, platt, l2)

    def restore(self, arrays: dict[str, np.ndarray], params: Params) -> SvmScorer:
        weights, bias, platt = require(arrays, "weights", "bias", "platt")
        if bias.shape != (weights.shape[1],) or platt.shape != (2, weights.shape[1]):
            raise ValueError("svm weights, bias and platt disagree on the number of outputs")
        return SvmScorer(weights, bias, platt, float(params["l2"]))
