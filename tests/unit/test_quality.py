"""Routing quality metrics on examples small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from routeiq.routing import quality

# Four prompts: the strong model wins on the first two, both are right on the last two.
WEAK = [0, 0, 1, 1]
STRONG = [1, 1, 1, 1]  # gap = 4 - 2 = 2 correct answers


def test_perfect_ranking() -> None:
    # Top-k to strong recovers 0, 1, 2, 2, 2 of the gap: PGR 0, .5, 1, 1, 1.
    fractions, pgr = quality.pgr_curve([4, 3, 2, 1], WEAK, STRONG)
    assert fractions.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert pgr.tolist() == [0, 0.5, 1, 1, 1]
    # Trapezoids of width .25: (0+.5)/2 + (.5+1)/2 + 1 + 1 = 3, times .25.
    assert quality.apgr([4, 3, 2, 1], WEAK, STRONG) == pytest.approx(0.75)
    assert quality.cpt([4, 3, 2, 1], WEAK, STRONG, 0.5) == pytest.approx(25.0)
    assert quality.cpt([4, 3, 2, 1], WEAK, STRONG, 0.8) == pytest.approx(50.0)
    assert quality.auroc([4, 3, 2, 1], [1, 1, 0, 0]) == 1.0


def test_worst_ranking() -> None:
    # PGR 0, 0, 0, .5, 1: area .25 * (0 + 0 + .25 + .75) = .25.
    result = quality.evaluate([1, 2, 3, 4], WEAK, STRONG)
    assert result.apgr == pytest.approx(0.25)
    assert result.cpt50 == pytest.approx(75.0)
    assert result.cpt80 == pytest.approx(100.0)
    assert result.auroc == 0.0
    assert result.n == 4


def test_constant_score_is_the_expected_random_router() -> None:
    # All tied: each step adds the mean gain (.5 of 2): PGR 0, .25, .5, .75, 1, area .5.
    result = quality.evaluate([7, 7, 7, 7], WEAK, STRONG)
    assert result.apgr == pytest.approx(0.5)
    assert result.cpt50 == pytest.approx(50.0)
    assert result.auroc == 0.5


def test_metrics_do_not_depend_on_input_order() -> None:
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, 200).astype(float)
    weak = rng.integers(0, 2, 200)
    strong = np.maximum(weak, rng.integers(0, 2, 200))
    permutation = rng.permutation(200)
    first = quality.evaluate(scores, weak, strong)
    second = quality.evaluate(scores[permutation], weak[permutation], strong[permutation])
    assert first.apgr == pytest.approx(second.apgr)
    assert first.cpt50 == second.cpt50 and first.auroc == pytest.approx(second.auroc)


def test_auroc_counts_ties_half() -> None:
    # Positives score 1 and 2, the negative 1: pairs (1 vs 1) = .5 and (2 vs 1) = 1 -> .75.
    assert quality.auroc([1, 1, 2], [0, 1, 1]) == pytest.approx(0.75)
    assert quality.auroc([1, 2], [1, 1]) == 0.5  # one class only


def test_graded_scores_and_strong_wins() -> None:
    assert quality.strong_wins([0.2, 0.9, 0.5], [0.8, 0.9, 0.4]).tolist() == [True, False, False]
    assert quality.apgr([2, 1], [0.0, 0.5], [1.0, 0.5]) == pytest.approx(0.75)


def test_refuses_inputs_without_a_gap_or_of_mismatched_length() -> None:
    with pytest.raises(ValueError, match="no performance gap"):
        quality.apgr([1, 2], [1, 1], [1, 0])
    with pytest.raises(ValueError, match="one value per prompt"):
        quality.apgr([1, 2, 3], [0, 1], [1, 1])
    with pytest.raises(ValueError, match="target"):
        quality.cpt([1, 2], [0, 0], [1, 1], 1.5)


def _noisy_router(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A router whose score is the strong model's win plus noise, on n prompts."""
    rng = np.random.default_rng(seed)
    weak = (rng.random(n) < 0.6).astype(float)
    strong = np.maximum(weak, (rng.random(n) < 0.5).astype(float))
    scores = (strong - weak) + rng.normal(0.0, 1.0, n)
    return scores, weak, strong


def test_apgr_standard_error_shrinks_with_more_prompts_and_is_seeded() -> None:
    small = quality.apgr_standard_error(*_noisy_router(400, 1))
    large = quality.apgr_standard_error(*_noisy_router(6400, 1))
    assert 0.0 < large < small / 2.5  # ~1/sqrt(16) of it, with room for the bootstrap's own noise
    assert quality.apgr_standard_error(*_noisy_router(400, 1), seed=3) == quality.apgr_standard_error(
        *_noisy_router(400, 1), seed=3
    )


def test_apgr_difference_is_paired() -> None:
    scores, weak, strong = _noisy_router(600, 2)
    assert quality.apgr_difference(scores, scores, weak, strong) == (0.0, 0.0)
    # A better router (less noise) beats it by many paired standard errors; unpaired errors would add up.
    better = (strong - weak) + np.random.default_rng(5).normal(0.0, 0.3, strong.size)
    gain, spread = quality.apgr_difference(better, scores, weak, strong)
    assert gain == pytest.approx(quality.apgr(better, weak, strong) - quality.apgr(scores, weak, strong))
    assert gain > 4 * spread > 0
    with pytest.raises(ValueError, match="two resamples"):
        quality.apgr_standard_error(scores, weak, strong, resamples=1)


def test_average_ranks_share_ties() -> None:
    assert quality.average_ranks([3, 1, 3, 2]).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert quality.average_ranks([5, 5, 5]).tolist() == [2.0, 2.0, 2.0]
