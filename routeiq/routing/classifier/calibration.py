"""Small, deterministic fits that turn raw centroid similarities into probabilities.

Fitted at build time on the prototypes only (out-of-fold, so the scales reflect how the centroids
generalise rather than how well they remember their own members); nothing here runs per request.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def fit_logistic(
    features: np.ndarray, label: np.ndarray, l2: float = 1e-3, iterations: int = 100
) -> tuple[np.ndarray, float]:
    """(weights, offset) maximising the likelihood of label ~ sigmoid(features @ weights + offset).

    Newton's method with a small ridge on the weights (not the offset): deterministic, no
    learning rate to tune, and converges in a handful of steps on a few hundred prototypes.
    """
    x = np.column_stack([features.astype(np.float64), np.ones(len(features))])
    y = label.astype(np.float64)
    k = x.shape[1]
    w = np.zeros(k)
    penalty = np.diag([l2] * (k - 1) + [0.0])
    for _ in range(iterations):
        p = sigmoid(x @ w)
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(k)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return w[:-1].copy(), float(w[-1])
