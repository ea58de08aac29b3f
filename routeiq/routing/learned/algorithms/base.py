"""The contract every learned-router algorithm meets, so training, artifacts and serving stay generic.

An algorithm is fitted on a feature matrix (one row per prompt) and the per-model scores scaled to
[0, 1]; when a (weak, strong) pair is named it also learns a ``p_strong`` column. Its prediction is
one column per model (how well that model is expected to do) plus, for a pair, a last column: the
probability that the strong model beats the weak one, ties counted half. For 0/1 outcomes that is
``(1 + E[strong] - E[weak]) / 2``: 0.5 means "no expected difference", so ranking by it ranks by the
expected gain of calling the strong model, which is exactly what APGR rewards.

Fitted state is plain numeric arrays (saved as ``.npz``, loaded without pickle) plus JSON-able
hyper-parameters; nothing else survives a save, by design.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from routeiq.routing import quality

Params = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pair:
    """Column indices of the weak and the strong model in the score matrix."""

    weak: int
    strong: int


class Scorer(Protocol):
    """A fitted algorithm: features in, per-model scores (and ``p_strong`` for a pair) out."""

    algo: ClassVar[str]

    def predict(self, features: np.ndarray) -> np.ndarray: ...

    def arrays(self) -> dict[str, np.ndarray]: ...

    def params(self) -> Params: ...


class Algorithm(Protocol):
    """How to fit a ``Scorer`` and how to rebuild one from its saved arrays.

    ``parameters`` names every hyper-parameter ``fit`` reads (``--param KEY=VALUE``); ``adapt`` fits
    them to the number of training rows, saying what it changed and why.
    """

    name: str
    parameters: ClassVar[tuple[str, ...]]

    def adapt(self, params: Params, rows: int) -> tuple[Params, list[str]]: ...

    def fit(
        self, features: np.ndarray, scores: np.ndarray, pair: Pair | None, seed: int, params: Params
    ) -> Scorer: ...

    def restore(self, arrays: dict[str, np.ndarray], params: Params) -> Scorer: ...


def check_parameters(algo: str, params: Params, known: tuple[str, ...]) -> None:
    """A ``ValueError`` for a parameter ``algo`` does not read: a typo would otherwise change nothing."""
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"{algo} has no parameter {', '.join(map(repr, unknown))} (its parameters: {', '.join(known)})"
        )


def keep_as_is(params: Params, rows: int) -> tuple[Params, list[str]]:
    """``adapt`` for algorithms whose parameters suit any number of rows."""
    return dict(params), []


def with_pair_column(scores: np.ndarray, pair: Pair | None) -> np.ndarray:
    """The training targets: the per-model scores, plus the pair's "strong wins, ties half" column."""
    if pair is None:
        return scores
    p_strong = (1.0 + scores[:, pair.strong] - scores[:, pair.weak]) / 2.0
    return np.hstack([scores, p_strong[:, None]])


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -40.0, 40.0)))


def require(arrays: dict[str, np.ndarray], *names: str) -> list[np.ndarray]:
    """The named arrays, or a ``KeyError`` naming the one that is missing."""
    missing = [name for name in names if name not in arrays]
    if missing:
        raise KeyError(f"missing arrays: {', '.join(missing)}")
    return [arrays[name] for name in names]


def ranking_quality(scores: np.ndarray, target: np.ndarray, paired: bool = True) -> tuple[float, float]:
    """(APGR, AUROC) of ``scores`` against the routed column's soft target, for hyper-parameter searches.

    With a pair the target is ``(1 + strong - weak) / 2`` and APGR is measured on the gain
    ``strong - weak``: the figure routing is judged by, which also counts the prompts where the strong
    model does worse (AUROC, "strong wins" against the rest, does not). Without a pair, or when the
    rows hold no positive gain to recover, the first number is the AUROC again.
    """
    labels = target > 0.5
    auroc = float(quality.auroc(scores, labels)) if 0 < labels.sum() < labels.size else 0.5
    gain = 2.0 * target - 1.0
    if not paired or float(gain.sum()) <= 0.0:
        return auroc, auroc
    return float(quality.apgr(scores, np.zeros_like(gain), gain)), auroc
