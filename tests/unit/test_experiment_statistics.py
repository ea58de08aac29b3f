"""The experiment statistics against scipy and statsmodels (reference values computed in the test)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from routeiq.experiments import statistics as st
from routeiq.experiments.summary import ArmSummary, Histogram, Moments, Rate


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (37, 200), (4990, 10000)])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_wilson_matches_statsmodels(successes: int, n: int, alpha: float) -> None:
    interval = st.wilson_interval(Rate(n, successes), alpha)
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-12)


@pytest.mark.parametrize("df", [1, 2, 3, 4.5, 9, 29, 100.25, 200, 731.5, 5000])
@pytest.mark.parametrize("p", [0.5, 0.9, 0.975, 0.995, 0.025])
def test_t_quantile_matches_scipy(df: float, p: float) -> None:
    assert st.t_quantile(p, df) == pytest.approx(float(sps.t.ppf(p, df)), rel=1e-9, abs=1e-12)


def test_mean_interval_matches_scipy_t_interval() -> None:
    values = np.random.default_rng(1).gamma(2.0, 0.003, size=57)
    interval = st.mean_interval(Moments.of(values))
    low, high = sps.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=sps.sem(values))
    assert (interval.estimate, interval.low, interval.high) == pytest.approx(
        (values.mean(), low, high), rel=1e-9
    )


def test_moments_merge_and_variance_match_numpy() -> None:
    values = np.random.default_rng(2).normal(3.0, 2.0, size=1000)
    merged = Moments.of(values[:400]).merge(Moments.of(values[400:]))
    assert merged.n == 1000
    assert merged.mean == pytest.approx(values.mean(), rel=1e-12)
    assert merged.variance == pytest.approx(values.var(ddof=1), rel=1e-9)
    assert math.isnan(Moments.of([1.0]).variance)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(56, 70, 48, 80), (9, 10, 3, 10), (0, 50, 2, 50), (480, 1000, 500, 1000)]
)
def test_newcombe_difference_matches_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    interval = st.rate_difference(Rate(n1, x1), Rate(n2, x2))
    low, high = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-10)
    # Newcombe's own worked example (1998, table II, 56/70 vs 48/80): 0.0524 to 0.3339.
    if (x1, n1, x2, n2) == (56, 70, 48, 80):
        assert (round(interval.low, 4), round(interval.high, 4)) == (0.0524, 0.3339)


def test_welch_difference_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 1.0, size=40), rng.normal(1.4, 2.5, size=90)
    interval = st.mean_difference(Moments.of(a), Moments.of(b))
    reference = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (interval.low, interval.high) == pytest.approx((reference.low, reference.high), rel=1e-9)
    assert st.welch_degrees_of_freedom(Moments.of(a), Moments.of(b)) == pytest.approx(
        float(sps.ttest_ind(a, b, equal_var=False).df), rel=1e-9
    )


def test_histogram_percentile_is_within_its_bucket_of_the_exact_one() -> None:
    latencies = np.random.default_rng(4).lognormal(np.log(800), 0.6, size=20_000)
    estimate = st.quantile_of(Histogram.of(latencies), 0.95)
    assert estimate == pytest.approx(np.percentile(latencies, 95), rel=0.02)


def test_percentile_bootstrap_interval_is_seeded_and_matches_the_order_statistic_interval() -> None:
    latencies = np.random.default_rng(5).lognormal(np.log(800), 0.6, size=5000)
    histogram = Histogram.of(latencies)
    interval = st.quantile_interval(histogram, 0.95, seed=7)
    assert interval == st.quantile_interval(histogram, 0.95, seed=7)
    # The distribution-free interval for the 95th percentile: order statistics from Binomial(n, 0.95).
    ranks = sps.binom.ppf([0.025, 0.975], len(latencies), 0.95).astype(int)
    ordered = np.sort(latencies)
    exact_low, exact_high = ordered[ranks[0] - 1], ordered[ranks[1]]
    assert interval.low == pytest.approx(exact_low, rel=0.05)
    assert interval.high == pytest.approx(exact_high, rel=0.05)
    true_p95 = float(sps.lognorm.ppf(0.95, 0.6, scale=800))
    assert interval.low < true_p95 < interval.high


def test_percentile_difference_interval_contains_the_true_gap() -> None:
    rng = np.random.default_rng(6)
    a, b = (
        Histogram.of(rng.lognormal(np.log(800), 0.5, 8000)),
        Histogram.of(rng.lognormal(np.log(1000), 0.5, 8000)),
    )
    interval = st.quantile_difference(a, b, 0.95)
    gap = float(sps.lognorm.ppf(0.95, 0.5, scale=800) - sps.lognorm.ppf(0.95, 0.5, scale=1000))
    assert interval.low < gap < interval.high < 0


def _exact_p_b_beats_a(a: Rate, b: Rate) -> float:
    """P(p_b > p_a) for Beta(1 + s, 1 + f) posteriors, by numerical integration."""
    pa = sps.beta(1 + a.successes, 1 + a.n - a.successes)
    pb = sps.beta(1 + b.successes, 1 + b.n - b.successes)
    return float(integrate.quad(lambda x: pb.pdf(x) * pa.cdf(x), 0, 1, limit=200)[0])


@pytest.mark.parametrize(
    ("a", "b"),
    [(Rate(100, 50), Rate(100, 60)), (Rate(1000, 500), Rate(1000, 510)), (Rate(20, 0), Rate(20, 1))],
)
def test_p_best_for_rates_matches_the_exact_beta_probability(a: Rate, b: Rate) -> None:
    draws = 200_000
    p_best = st.p_best_rates([a, b], higher_is_better=True, draws=draws, seed=1)
    exact = _exact_p_b_beats_a(a, b)
    assert p_best[1] == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / draws) + 1e-4)
    assert sum(p_best) == pytest.approx(1.0)
    assert st.p_best_rates([a, b], higher_is_better=False, draws=draws, seed=1)[0] == pytest.approx(
        exact, abs=0.01
    )


def test_p_best_for_normals_matches_the_closed_form() -> None:
    p_best = st.p_best_normal([1.0, 1.1], [0.01, 0.02], higher_is_better=True, draws=200_000, seed=2)
    exact = float(sps.norm.cdf(0.1 / math.sqrt(0.03)))
    assert p_best[1] == pytest.approx(exact, abs=0.005)


def test_normal_posterior_is_the_conjugate_update_of_the_unit_information_prior() -> None:
    arms = [Moments.of([1.0, 2.0, 3.0, 4.0]), Moments.of([2.0, 4.0, 6.0, 8.0, 10.0])]
    prior_mean, prior_variance = st.unit_information_prior(arms)
    pooled = np.array([1.0, 2.0, 3.0, 4.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    assert (prior_mean, prior_variance) == pytest.approx((pooled.mean(), pooled.var(ddof=1)))
    mean, variance = st.normal_posterior(arms[0], prior_mean, prior_variance)
    precision = 1 / prior_variance + 4 / arms[0].variance
    assert variance == pytest.approx(1 / precision)
    assert mean == pytest.approx((prior_mean / prior_variance + 4 * 2.5 / arms[0].variance) / precision)


def test_p_best_for_percentiles_prefers_the_faster_arm() -> None:
    rng = np.random.default_rng(8)
    fast, slow = Histogram.of(rng.lognormal(6.5, 0.5, 3000)), Histogram.of(rng.lognormal(6.7, 0.5, 3000))
    p_best = st.p_best_quantiles([slow, fast], 0.95, higher_is_better=False, draws=2000, seed=3)
    assert p_best[1] > 0.99 and sum(p_best) == pytest.approx(1.0)


@pytest.mark.parametrize(("delta", "sigma"), [(0.025, 0.5), (0.1, 1.0), (0.001, 0.01)])
def test_fixed_sample_size_matches_statsmodels(delta: float, sigma: float) -> None:
    n = st.fixed_sample_size(delta, sigma**2, sigma**2, alpha=0.05, power=0.8)
    reference = NormalIndPower().solve_power(effect_size=delta / sigma, alpha=0.05, power=0.8, ratio=1.0)
    # statsmodels counts the (negligible) power of rejecting in the wrong direction too: 2e-6 apart.
    assert n == pytest.approx(reference, rel=1e-5)


def test_ratio_estimate_is_the_delta_method() -> None:
    score, cost = Moments.of([0.0, 1.0, 1.0, 1.0]), Moments.of([0.002, 0.004, 0.003])
    ratio, variance = st.ratio_estimate(score, cost)
    assert ratio == pytest.approx(0.75 / 0.003)
    expected = ratio**2 * (score.variance / 4 / 0.75**2 + cost.variance / 3 / 0.003**2)
    assert variance == pytest.approx(expected)


def test_arm_summaries_merge_and_round_trip_through_flat_counters() -> None:
    one = ArmSummary(10, 1, Moments.of([0.1] * 10), Moments.of([1.0, 0.0]), Histogram.of([120.0, 900.0]))
    two = ArmSummary(5, 0, Moments.of([0.2] * 5), Moments.of([1.0]), Histogram.of([4000.0]))
    merged = one.merge(two)
    assert merged.requests == 15 and merged.feedback.n == 3 and merged.latency.n == 3
    counters = merged.to_counters()
    assert all(isinstance(v, int | float) for v in counters.values())
    as_redis = {k: str(v).encode() for k, v in counters.items()}  # what HGETALL hands back
    assert ArmSummary.from_counters(as_redis) == merged
