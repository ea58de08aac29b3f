"""An ensemble of the linear and the knn router: a weighted mean of their predictions.

The two make different mistakes: knn remembers which neighbourhoods (subjects, kinds of prompt) are
hard, the logistic model draws one boundary through the standardised embedding and surface cues
(length, digits, ...). Both predict the same quantities on the same scale (each model's expected
score and, for a pair, the probability that the strong model wins, ties half), so their mean is
again such a prediction.

The knn member's weight is chosen on the training rows only: each member is fitted once on all of
them (with its own cross-validated parameter search: linear's L2, knn's k); then every training row
is scored out of fold by members refitted with those parameters on the other folds, and the weight
in ``WEIGHT_GRID`` whose mix has the best out-of-fold APGR (the gain of the strong over the weak
model, the figure routing is judged by) wins. A weight of 0 or 1 is allowed: the ensemble may be
one member when mixing does not help. Every candidate's APGR and AUROC is kept in ``params["cv"]``
and so in the artifact's manifest. ``--param knn_weight=...`` fixes the weight and skips the search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from routeiq.routing.learned.algorithms.base import (
    Pair,
    Params,
    Scorer,
    check_parameters,
    ranking_quality,
    with_pair_column,
)
from routeiq.routing.learned.algorithms.knn import Knn, KnnScorer
from routeiq.routing.learned.algorithms.linear import Linear, LinearScorer

WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_FOLDS = 3
SEPARATOR = "."  # member arrays are stored as "<member>.<array>" in the one weights file
MEMBERS = ("linear", "knn")


@dataclass(frozen=True)
class EnsembleScorer:
    algo: ClassVar[str] = "ensemble"
    linear: LinearScorer
    knn: KnnScorer
    knn_weight: float
    search: tuple[dict[str, Any], ...] = ()

    def predict(self, features: np.ndarray) -> np.ndarray:
        parts = []
        if self.knn_weight < 1.0:
            parts.append((1.0 - self.knn_weight) * self.linear.predict(features))
        if self.knn_weight > 0.0:
            parts.append(self.knn_weight * self.knn.predict(features))
        return np.asarray(sum(parts))

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"linear{SEPARATOR}{name}": value for name, value in self.linear.arrays().items()}
        out |= {f"knn{SEPARATOR}{name}": value for name, value in self.knn.arrays().items()}
        return out

    def params(self) -> Params:
        out: Params = {
            "knn_weight": self.knn_weight,
            "linear": self.linear.params(),
            "knn": self.knn.params(),
        }
        if self.search:
            out["cv"] = list(self.search)
        return out


def _out_of_fold(
    features: np.ndarray, scores: np.ndarray, pair: Pair | None, seed: int, members: dict[str, Params]
) -> dict[str, np.ndarray]:
    """Each member's routed column for every row, from members fitted on the other folds."""
    n = len(features)
    assignment = np.empty(n, dtype=np.int64)
    assignment[np.random.default_rng(seed + 1).permutation(n)] = np.arange(n) % DEFAULT_FOLDS
    out = {name: np.empty(n) for name in MEMBERS}
    for fold in range(DEFAULT_FOLDS):
        held, kept = assignment == fold, assignment != fold
        fitted: dict[str, Scorer] = {
            "linear": Linear().fit(features[kept], scores[kept], pair, seed, members["linear"]),
            "knn": Knn().fit(features[kept], scores[kept], pair, seed, members["knn"]),
        }
        for name, scorer in fitted.items():
            out[name][held] = scorer.predict(features[held])[:, -1]
    return out


def choose_weight(
    oof: dict[str, np.ndarray], target: np.ndarray, paired: bool
) -> tuple[float, list[dict[str, Any]]]:
    """The knn weight with the best out-of-fold APGR (ties: the weight nearer an even mix)."""
    search = []
    for weight in WEIGHT_GRID:
        mixed = (1.0 - weight) * oof["linear"] + weight * oof["knn"]
        apgr, auroc = ranking_quality(mixed, target, paired)
        search.append({"knn_weight": weight, "cv_apgr": round(apgr, 4), "cv_auroc": round(auroc, 4)})
    best = max(search, key=lambda row: (row["cv_apgr"], -abs(row["knn_weight"] - 0.5)))
    return float(best["knn_weight"]), search


class Ensemble:
    name = "ensemble"
    parameters: ClassVar[tuple[str, ...]] = ("knn_weight",)

    def adapt(self, params: Params, rows: int) -> tuple[Params, list[str]]:
        check_parameters(self.name, params, self.parameters)
        notes: list[str] = []
        for member in (Linear(), Knn()):
            _, member_notes = member.adapt({}, rows)
            notes += [f"ensemble: {note}" for note in member_notes]
        if "knn_weight" not in params and rows < 10 * DEFAULT_FOLDS:
            notes.append(f"ensemble: {rows} training prompts are too few to choose the mix: knn_weight=0.5")
            return {**params, "knn_weight": 0.5}, notes
        return dict(params), notes

    def fit(
        self, features: np.ndarray, scores: np.ndarray, pair: Pair | None, seed: int, params: Params
    ) -> EnsembleScorer:
        check_parameters(self.name, params, self.parameters)
        rows = len(features)
        member_params = {
            name: member.adapt({}, rows)[0] for name, member in (("linear", Linear()), ("knn", Knn()))
        }
        linear = Linear().fit(features, scores, pair, seed, member_params["linear"])
        knn = Knn().fit(features, scores, pair, seed, member_params["knn"])
        search: list[dict[str, Any]] = []
        if "knn_weight" in params:
            weight = float(params["knn_weight"])
        else:
            # The out-of-fold members reuse the parameters just chosen on all the rows (their own
            # search inside each fold would cost folds x grid more fits for a difference in the noise).
            chosen: dict[str, Params] = {"linear": {"l2": linear.l2}, "knn": {"k": knn.k}}
            target = with_pair_column(scores, pair)[:, -1]
            oof = _out_of_fold(features, scores, pair, seed, chosen)
            weight, search = choose_weight(oof, target, pair is not None)
        if not 0.0 <= weight <= 1.0:
            raise ValueError("knn_weight must be in 0..1")
        return EnsembleScorer(linear, knn, weight, tuple(search))

    def restore(self, arrays: dict[str, np.ndarray], params: Params) -> EnsembleScorer:
        members: dict[str, dict[str, np.ndarray]] = {name: {} for name in MEMBERS}
        for key, value in arrays.items():
            member, _, name = key.partition(SEPARATOR)
            if member not in members or not name:
                raise ValueError(f"ensemble array {key!r} names no member ({', '.join(MEMBERS)})")
            members[member][name] = value
        linear = Linear().restore(members["linear"], params["linear"])
        knn = Knn().restore(members["knn"], params["knn"])
        search = tuple(params.get("cv", ()))
        return EnsembleScorer(linear, knn, float(params["knn_weight"]), search)
