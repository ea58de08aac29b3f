"""Logistic regression on standardised features: the strong simple baseline every other router must beat.

One logistic model per output (each model's "did well", and for a pair "the strong model wins", ties
counted half), fitted by Newton's method on the cross-entropy to the soft targets plus an L2 penalty.

- Standardised: each feature column is centred and scaled to unit variance on the training rows (the
  mean and scale are saved), so the penalty treats the embedding dimensions and the surface cues
  (length, digits, ...) alike and the Newton steps are well conditioned.
- Class weighting: rows are weighted so each class of an output carries half the loss; "the strong
  model wins" is a minority, and unweighted the model would mostly learn the base rate. The offset
  is then corrected by the log prior odds (King and Zeng's prior correction), so the probability is
  again calibrated to the training base rate while the ranking keeps what the balanced fit learned.
- The L2 strength is chosen by k-fold cross-validation on the training rows only (the out-of-fold
  APGR of the pair column, the figure routing is judged by; the AUROC without a pair); every
  candidate's score is kept in ``params`` and so in the artifact's manifest. ``--param l2=...`` fixes
  it and skips the search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from routeiq.routing.learned.algorithms.base import (
    Pair,
    Params,
    check_parameters,
    keep_as_is,
    ranking_quality,
    require,
    sigmoid,
    with_pair_column,
)

L2_GRID = (
    1.0,
    10.0,
    100.0,
    1000.0,
    10000.0,
    100000.0,
)  # in units of "one row's worth" of loss: the data is summed
DEFAULT_FOLDS = 3
NEWTON_STEPS = 12


@dataclass(frozen=True)
class LinearScorer:
    algo: ClassVar[str] = "linear"
    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,) 1/std (0 for a constant column)
    weights: np.ndarray  # (d, outputs)
    bias: np.ndarray  # (outputs,)
    l2: float
    search: tuple[dict[str, Any], ...] = ()

    def predict(self, features: np.ndarray) -> np.ndarray:
        x = (features.astype(np.float64) - self.mean) * self.scale
        return sigmoid(x @ self.weights + self.bias)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "weights": self.weights, "bias": self.bias}

    def params(self) -> Params:
        out: Params = {"l2": self.l2}
        if self.search:
            out["cv"] = list(self.search)
        return out


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    std = x.std(axis=0)
    return x.mean(axis=0), np.where(std > 1e-12, 1.0 / np.where(std > 1e-12, std, 1.0), 0.0)


def fit_weighted_logistic(x: np.ndarray, target: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """(weights, offset) for soft ``target`` in [0, 1], classes balanced, then prior-corrected.

    ``x`` is already standardised. Newton's method: deterministic, no learning rate, a few steps.
    """
    n, d = x.shape
    positive = target > 0.5
    share = float(positive.mean())
    if share in (0.0, 1.0):  # one class only: nothing to rank, predict the base rate
        return np.zeros(d), float(np.log((target.mean() + 1e-6) / (1 - target.mean() + 1e-6)))
    sample = np.where(positive, 0.5 / share, 0.5 / (1.0 - share))
    design = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0  # the offset is not shrunk
    for _ in range(NEWTON_STEPS):
        p = sigmoid(design @ w)
        gradient = design.T @ (sample * (p - target)) + penalty * w
        curvature = sample * np.maximum(p * (1.0 - p), 1e-9)
        hessian = (design * curvature[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    # The balanced fit saw as many positives as negatives: move the offset alone (unweighted, Newton on
    # one variable) until the mean probability matches the real mean target again.
    margins, offset = x @ w[:-1], float(w[-1])
    goal = float(target.mean())
    for _ in range(NEWTON_STEPS):
        fitted = sigmoid(margins + offset)
        shift = (float(fitted.mean()) - goal) / max(float((fitted * (1.0 - fitted)).mean()), 1e-9)
        offset -= shift
        if abs(shift) < 1e-10:
            break
    return w[:-1], offset


def _ranked_column(targets: np.ndarray) -> int:
    return targets.shape[1] - 1  # the pair column when there is one, else the last model's


def choose_l2(
    x: np.ndarray, target: np.ndarray, folds: int, seed: int, paired: bool = True
) -> tuple[float, list[dict[str, Any]]]:
    """The grid's L2 with the best out-of-fold APGR on these rows (for a pair; else AUROC; ties: the
    stronger penalty): see ``ranking_quality``."""
    order = np.random.default_rng(seed).permutation(len(x))
    assignment = np.empty(len(x), dtype=np.int64)
    assignment[order] = np.arange(len(x)) % folds
    search: list[dict[str, Any]] = []
    for l2 in L2_GRID:
        scores = np.empty(len(x))
        for fold in range(folds):
            held, kept = assignment == fold, assignment != fold
            mean, scale = standardisation(x[kept])
            weights, offset = fit_weighted_logistic((x[kept] - mean) * scale, target[kept], l2)
            scores[held] = ((x[held] - mean) * scale) @ weights + offset
        apgr, auroc = ranking_quality(scores, target, paired)
        search.append({"l2": l2, "cv_apgr": round(apgr, 4), "cv_auroc": round(auroc, 4)})
    best = max(search, key=lambda row: (row["cv_apgr"], row["l2"]))
    return float(best["l2"]), search


class Linear:
    name = "linear"
    parameters: ClassVar[tuple[str, ...]] = ("l2", "folds")

    def adapt(self, params: Params, rows: int) -> tuple[Params, list[str]]:
        check_parameters(self.name, params, self.parameters)
        folds = int(params.get("folds", DEFAULT_FOLDS))
        if "l2" not in params and rows < 10 * folds:
            note = (
                f"linear: {rows} training prompts are too few to cross-validate the L2 strength: using l2=10"
            )
            return {**params, "l2": 10.0}, [note]
        return keep_as_is(params, rows)

    def fit(
        self, features: np.ndarray, scores: np.ndarray, pair: Pair | None, seed: int, params: Params
    ) -> LinearScorer:
        check_parameters(self.name, params, self.parameters)
        folds = int(params.get("folds", DEFAULT_FOLDS))
        if folds < 2:
            raise ValueError("folds must be at least 2")
        x = features.astype(np.float64)
        targets = with_pair_column(scores, pair)
        search: list[dict[str, Any]] = []
        if "l2" in params:
            l2 = float(params["l2"])
        else:
            l2, search = choose_l2(x, targets[:, _ranked_column(targets)], folds, seed, pair is not None)
        if l2 < 0:
            raise ValueError("l2 must be non-negative")
        mean, scale = standardisation(x)
        standardised = (x - mean) * scale
        columns = [fit_weighted_logistic(standardised, targets[:, j], l2) for j in range(targets.shape[1])]
        weights = np.column_stack([column[0] for column in columns])
        bias = np.array([column[1] for column in columns])
        return LinearScorer(mean, scale, weights, bias, l2, tuple(search))

    def restore(self, arrays: dict[str, np.ndarray], params: Params) -> LinearScorer:
        mean, scale, weights, bias = require(arrays, "mean", "scale", "weights", "bias")
        if mean.shape != scale.shape or weights.shape != (mean.shape[0], bias.shape[0]):
            raise ValueError("linear mean, scale, weights and bias disagree on their shapes")
        search = tuple(params.get("cv", ()))
        return LinearScorer(mean, scale, weights, bias, float(params["l2"]), search)
