"""The learned-router algorithms, built by name (the names live in ``routeiq/routing/catalogue.py``)."""

from __future__ import annotations

from routeiq.routing.catalogue import LEARNED_ALGORITHMS
from routeiq.routing.learned.algorithms.base import Algorithm, Pair, Params, Scorer
from routeiq.routing.learned.algorithms.elo import Elo
from routeiq.routing.learned.algorithms.ensemble import Ensemble
from routeiq.routing.learned.algorithms.knn import Knn
from routeiq.routing.learned.algorithms.linear import Linear
from routeiq.routing.learned.algorithms.mf import Mf
from routeiq.routing.learned.algorithms.mlp import Mlp
from routeiq.routing.learned.algorithms.svm import Svm

ALGORITHM_NAMES = LEARNED_ALGORITHMS  # named in the catalogue, built here


def algorithm(name: str) -> Algorithm:
    """A fresh algorithm object for ``name`` (a ``ValueError`` lists the known ones)."""
    factories: dict[str, type[Algorithm]] = {
        "knn": Knn,
        "svm": Svm,
        "mlp": Mlp,
        "mf": Mf,
        "elo": Elo,
        "linear": Linear,
        "ensemble": Ensemble,
    }
    try:
        return factories[name]()
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r} (choose from {', '.join(ALGORITHM_NAMES)})") from None


__all__ = ["ALGORITHM_NAMES", "Algorithm", "Pair", "Params", "Scorer", "algorithm"]
