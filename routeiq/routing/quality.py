"""Routing quality metrics: how much of the weak→strong performance gap a router recovers per strong call.

A router is judged by a *routing score* per prompt (higher = send to the strong model) against the
per-prompt correctness (or any score in [0, 1]) of the weak and the strong model. Sending the top
``k`` prompts by score to the strong model gives a mixed performance; the performance-gap recovered
(PGR) is where that lands between "all weak" (0) and "all strong" (1). The metrics summarise the PGR
curve over every strong-call fraction, as in RouteLLM (Ong et al., 2024):

- APGR: the area under the PGR curve over strong-call fractions 0..1 (random routing ≈ 0.5).
- CPT(x): the smallest strong-call percentage whose PGR reaches x (lower is better).
- AUROC: how well the score ranks prompts where the strong model wins above the others.

A few hundred prompts measure APGR only roughly (about ±0.03 at 660 maths prompts), so
``apgr_standard_error`` and ``apgr_difference`` give the bootstrap spread: of one router's APGR, and of
the gap between two routers judged on the same resampled prompts (paired, so most of the noise the
two share cancels).

The curve is computed at every prompt (k = 0..n), not on a coarse grid, and prompts with equal scores
are treated as a block taken in random order, using the block's *expected* gain: a constant router
scores exactly like the average random router, and no metric depends on the input order.

Pure functions over numpy arrays: the benchmark, ``routeiq train`` and the tests share them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
BOOTSTRAP_RESAMPLES = 200


@dataclass(frozen=True, slots=True)
class RoutingQuality:
    """Summary numbers for one router on one labelled set: CPTs in percent of prompts, the rest in 0..1."""

    apgr: float
    cpt50: float
    cpt80: float
    auroc: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _inputs(
    scores: ArrayLike, weak: ArrayLike, strong: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    w = np.asarray(weak, dtype=np.float64).reshape(-1)
    g = np.asarray(strong, dtype=np.float64).reshape(-1)
    if not (s.shape == w.shape == g.shape):
        raise ValueError(
            f"scores, weak and strong must have one value per prompt: {s.shape} {w.shape} {g.shape}"
        )
    if s.size == 0:
        raise ValueError("no prompts to evaluate")
    if not np.all(np.isfinite(s)):
        raise ValueError("routing scores must be finite")
    return s, w, g


def pgr_curve(scores: ArrayLike, weak: ArrayLike, strong: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """PGR after sending the top ``k`` prompts (k = 0..n) to the strong model.

    Returns ``(fractions, pgr)`` of length n + 1. When the strong model is no better than the weak one
    on average there is no gap to recover and the PGR is undefined: a ``ValueError`` says so.
    """
    s, w, g = _inputs(scores, weak, strong)
    n = s.size
    gap_total = float(g.sum() - w.sum())
    if gap_total <= 0:
        raise ValueError("the strong model does not outperform the weak one: no performance gap to recover")
    gain = g - w
    order = np.argsort(-s, kind="stable")
    sorted_scores, sorted_gain = s[order], gain[order]
    # Replace each gain by the mean gain of its tie block: taking any k of a tied block then adds the
    # expected gain of a random choice among them.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    sizes = np.diff(np.r_[starts, n])
    block_mean = np.add.reduceat(sorted_gain, starts) / sizes
    expected_gain = np.repeat(block_mean, sizes)
    recovered = np.r_[0.0, np.cumsum(expected_gain)]
    return np.arange(n + 1) / n, recovered / gap_total


def apgr(scores: ArrayLike, weak: ArrayLike, strong: ArrayLike) -> float:
    """Average performance-gap recovered: trapezoid area under the PGR curve over fractions 0..1."""
    fractions, pgr = pgr_curve(scores, weak, strong)
    return float(np.sum((pgr[1:] + pgr[:-1]) * np.diff(fractions)) / 2.0)


def cpt(scores: ArrayLike, weak: ArrayLike, strong: ArrayLike, target: float) -> float:
    """Call-performance threshold: the smallest strong-call percentage (0..100) with PGR >= ``target``."""
    if not 0.0 <= target <= 1.0:
        raise ValueError("target is a fraction of the gap in 0..1")
    fractions, pgr = pgr_curve(scores, weak, strong)
    reached = np.flatnonzero(pgr >= target - 1e-12)
    return float(fractions[reached[0]] * 100.0) if reached.size else 100.0


def auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney), ties counted half; 0.5 when one class is missing."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(bool)
    if s.shape != y.shape:
        raise ValueError("one label per score")
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return 0.5
    rank_sum = float(average_ranks(s)[y].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def average_ranks(scores: ArrayLike) -> np.ndarray:
    """Each score's 1-based rank among all of them, tied scores sharing their block's mean rank."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(s, kind="stable")
    sorted_scores = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], s.size]
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def strong_wins(weak: ArrayLike, strong: ArrayLike) -> np.ndarray:
    """The prompts where routing to the strong model pays: it scores strictly better than the weak one."""
    return np.asarray(strong, dtype=np.float64).reshape(-1) > np.asarray(weak, dtype=np.float64).reshape(-1)


def evaluate(scores: ArrayLike, weak: ArrayLike, strong: ArrayLike) -> RoutingQuality:
    """All four metrics at once; AUROC's positives are the prompts where the strong model wins."""
    s, w, g = _inputs(scores, weak, strong)
    return RoutingQuality(
        apgr=apgr(s, w, g),
        cpt50=cpt(s, w, g, 0.5),
        cpt80=cpt(s, w, g, 0.8),
        auroc=auroc(s, strong_wins(w, g)),
        n=int(s.size),
    )


def _bootstrap(statistic: Callable[[np.ndarray], float], n: int, resamples: int, seed: int) -> float:
    """Standard deviation of ``statistic(indices)`` over ``resamples`` draws of n indices with replacement.

    A draw without a weak-to-strong gap has no APGR and is skipped; none with one is a ``ValueError``.
    """
    if resamples < 2:
        raise ValueError("the bootstrap needs at least two resamples")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        try:
            values.append(statistic(rng.integers(0, n, n)))
        except ValueError:
            continue
    if len(values) < 2:
        raise ValueError("too few resamples have a performance gap to recover")
    return float(np.std(values, ddof=1))


def apgr_standard_error(
    scores: ArrayLike,
    weak: ArrayLike,
    strong: ArrayLike,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> float:
    """Bootstrap standard error of ``apgr(scores, weak, strong)``: its spread over resampled prompt sets."""
    s, w, g = _inputs(scores, weak, strong)
    return _bootstrap(lambda i: apgr(s[i], w[i], g[i]), s.size, resamples, seed)


def apgr_difference(
    scores: ArrayLike,
    baseline: ArrayLike,
    weak: ArrayLike,
    strong: ArrayLike,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """``apgr(scores) - apgr(baseline)`` on these prompts, and its paired bootstrap standard error."""
    s, w, g = _inputs(scores, weak, strong)
    b, _, _ = _inputs(baseline, weak, strong)
    difference = apgr(s, w, g) - apgr(b, w, g)
    spread = _bootstrap(lambda i: apgr(s[i], w[i], g[i]) - apgr(b[i], w[i], g[i]), s.size, resamples, seed)
    return difference, spread
