"""Small, deterministic fits that turn raw centroid similarities into probabilities.

Fitted at build time on the prototypes only (out-of-fold, so the scales reflect how the centroids
generalise rather than how well they remember their own members); nothing here runs per request.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def fit_logistic(
    score: np.ndarray, label: np.ndarray, l2: float = 1e-3, iterations: int = 50
) -> tuple[float, float]:
    """(scale, offset) maximising the likelihood of label ~ sigmoid(scale*score + offset); Newton steps."""
    x = np.stack([score.astype(np.float64), np.ones_like(score, dtype=np.float64)], axis=1)
    y = label.astype(np.float64)
    w = np.zeros(2)
    penalty = np.diag([l2, 0.0])
    for _ in range(iterations):
        p = sigmoid(x @ w)
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return float(w[0]), float(w[1])
