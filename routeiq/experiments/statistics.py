"""Fixed-sample estimates, intervals and the Bayesian probability that each arm is best.

Every interval here is a *fixed-sample* interval at level 1 - alpha (default alpha = 0.05, so 95%):
right if the sample size was fixed in advance and the data looked at once. They describe where an
arm stands; they must not be used to stop an experiment while watching it (that inflates false
positives). Stopping uses the anytime-valid confidence sequences in ``sequential``.

- Rates (error rate, thumbs up): Wilson score interval; difference of two rates: Newcombe's hybrid
  score interval (method 10 of Newcombe 1998), both well behaved near 0 and 1 and at small n.
- Means (cost per request, feedback score): Student t interval; difference of means: Welch's
  interval (unequal variances, Welch-Satterthwaite degrees of freedom).
- Percentiles (latency p95) from a histogram: interpolated within the bucket; interval and
  difference by the percentile bootstrap (multinomial resampling of the bucket counts, seeded).
- Ratios (quality per cost = mean feedback / mean cost): the delta method, treating the two means
  as independent (feedback arrives for a subset of requests; a positive correlation between score
  and cost makes the interval conservative, a negative one a little optimistic).

Probability each arm is best, with stated priors (Monte Carlo with a seeded generator):
- rates: each arm's rate ~ Beta(1, 1) (uniform) prior, so Beta(1 + successes, 1 + failures) posterior;
- means: each arm's mean ~ Normal(pooled mean, pooled per-observation variance): a unit-information
  prior worth one observation, centred on all arms alike so it favours none; the likelihood is the
  normal approximation Normal(sample mean, s^2 / n);
- ratios: flat prior, normal approximation of the delta method;
- percentiles: the Bayesian bootstrap (Rubin 1981): bucket probabilities ~ Dirichlet(counts).

Everything is a pure function; nothing here needs scipy (the tests compare against it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from routeiq.experiments.summary import (
    BUCKET_LOWER_EDGES,
    BUCKET_UPPER_EDGES,
    Histogram,
    Moments,
    Rate,
)

ALPHA = 0.05
_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float | None]:
        return {
            key: finite_or_none(value)
            for key, value in (("estimate", self.estimate), ("low", self.low), ("high", self.high))
        }


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN or infinity: an unknown or unbounded end is null."""
    return float(value) if math.isfinite(value) else None


NAN_INTERVAL = Interval(math.nan, math.nan, math.nan)


def z_quantile(p: float) -> float:
    return _NORMAL.inv_cdf(p)


# Student's t without scipy ---------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        for step in (numerator, -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + step * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + step / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile: the Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5) refined by
    Newton steps on the exact distribution function."""
    z = z_quantile(p)
    t = z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    t += (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    t += (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * df**4)
    if df >= 200:  # the series' next term is below 1e-10 here: no refinement needed
        return t
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    for _ in range(8):
        density = math.exp(log_norm - (df + 1) / 2 * math.log1p(t * t / df))
        step = (t_cdf(t, df) - p) / density
        t -= step
        if abs(step) < 1e-12 * max(1.0, abs(t)):
            break
    return t


# Intervals -------------------------------------------------------------------------------------


def wilson_interval(rate: Rate, alpha: float = ALPHA) -> Interval:
    if rate.n == 0:
        return NAN_INTERVAL
    z = z_quantile(1 - alpha / 2)
    n, p = rate.n, rate.successes / rate.n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(moments: Moments, alpha: float = ALPHA) -> Interval:
    """Student t interval for a mean; NaN ends below two observations."""
    if moments.n < 2:
        return Interval(moments.mean, math.nan, math.nan)
    half = t_quantile(1 - alpha / 2, moments.n - 1) * math.sqrt(moments.variance / moments.n)
    return Interval(moments.mean, moments.mean - half, moments.mean + half)


def rate_difference(a: Rate, b: Rate, alpha: float = ALPHA) -> Interval:
    """Newcombe's hybrid score interval for rate(a) - rate(b)."""
    if a.n == 0 or b.n == 0:
        return NAN_INTERVAL
    wa, wb = wilson_interval(a, alpha), wilson_interval(b, alpha)
    diff = wa.estimate - wb.estimate
    low = diff - math.hypot(wa.estimate - wa.low, wb.high - wb.estimate)
    high = diff + math.hypot(wa.high - wa.estimate, wb.estimate - wb.low)
    return Interval(diff, low, high)


def welch_degrees_of_freedom(a: Moments, b: Moments) -> float:
    va, vb = a.variance / a.n, b.variance / b.n
    if va + vb == 0:
        return math.inf
    return (va + vb) ** 2 / (va * va / (a.n - 1) + vb * vb / (b.n - 1))


def mean_difference(a: Moments, b: Moments, alpha: float = ALPHA) -> Interval:
    """Welch's interval for mean(a) - mean(b)."""
    if a.n < 2 or b.n < 2:
        return Interval(a.mean - b.mean, math.nan, math.nan)
    diff = a.mean - b.mean
    se = math.sqrt(a.variance / a.n + b.variance / b.n)
    df = welch_degrees_of_freedom(a, b)
    critical = z_quantile(1 - alpha / 2) if math.isinf(df) else t_quantile(1 - alpha / 2, df)
    return Interval(diff, diff - critical * se, diff + critical * se)


def ratio_estimate(numerator: Moments, denominator: Moments) -> tuple[float, float]:
    """mean(numerator) / mean(denominator) and its delta-method variance (independent means)."""
    if numerator.n < 2 or denominator.n < 2 or denominator.mean == 0:
        return math.nan, math.nan
    ratio = numerator.mean / denominator.mean
    relative = numerator.variance / numerator.n / numerator.mean**2 if numerator.mean else 0.0
    relative += denominator.variance / denominator.n / denominator.mean**2
    if numerator.mean == 0:  # the relative form breaks down: var(N/D) ~ var(N) / D^2
        return ratio, numerator.variance / numerator.n / denominator.mean**2
    return ratio, ratio * ratio * relative


def normal_interval(estimate: float, variance: float, alpha: float = ALPHA) -> Interval:
    half = z_quantile(1 - alpha / 2) * math.sqrt(variance)
    return Interval(estimate, estimate - half, estimate + half)


# Percentiles from a histogram ------------------------------------------------------------------


def histogram_quantiles(counts: np.ndarray, q: float) -> np.ndarray:
    """The q-quantile of each row of bucket counts (or weights), interpolated linearly within its
    bucket; the open last bucket gives its lower edge. NaN for an empty row."""
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    cumulative = np.cumsum(counts, axis=1)
    totals = cumulative[:, -1]
    target = q * totals
    index = np.argmax(cumulative >= target[:, None] - 1e-12 * np.maximum(totals, 1)[:, None], axis=1)
    rows = np.arange(counts.shape[0])
    before = cumulative[rows, index] - counts[rows, index]
    in_bucket = counts[rows, index]
    fraction = np.clip(
        np.divide(target - before, in_bucket, out=np.zeros_like(target), where=in_bucket > 0), 0.0, 1.0
    )
    lower, upper = BUCKET_LOWER_EDGES[index], BUCKET_UPPER_EDGES[index]
    value = np.where(
        np.isfinite(upper), lower + fraction * (np.where(np.isfinite(upper), upper, 0) - lower), lower
    )
    return np.where(totals > 0, value, np.nan)


def quantile_of(histogram: Histogram, q: float) -> float:
    return float(histogram_quantiles(np.array(histogram.counts), q)[0])


def _bootstrap_quantiles(histogram: Histogram, q: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    counts = np.array(histogram.counts, dtype=float)
    resampled = rng.multinomial(histogram.n, counts / counts.sum(), size=draws)
    return histogram_quantiles(resampled, q)


def quantile_interval(
    histogram: Histogram, q: float, alpha: float = ALPHA, draws: int = 2000, seed: int = 0
) -> Interval:
    """Percentile-bootstrap interval of the q-quantile (resampling the bucket counts)."""
    if histogram.n == 0:
        return NAN_INTERVAL
    boot = _bootstrap_quantiles(histogram, q, draws, np.random.default_rng(seed))
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return Interval(quantile_of(histogram, q), float(low), float(high))


def quantile_difference(
    a: Histogram, b: Histogram, q: float, alpha: float = ALPHA, draws: int = 2000, seed: int = 0
) -> Interval:
    """Percentile-bootstrap interval of quantile(a) - quantile(b), the two resampled independently."""
    if a.n == 0 or b.n == 0:
        return NAN_INTERVAL
    rng = np.random.default_rng(seed)
    boot = _bootstrap_quantiles(a, q, draws, rng) - _bootstrap_quantiles(b, q, draws, rng)
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return Interval(quantile_of(a, q) - quantile_of(b, q), float(low), float(high))


# Probability each arm is best ------------------------------------------------------------------


def _share_best(samples: np.ndarray, higher_is_better: bool) -> list[float]:
    """samples: draws x arms. The share of draws in which each arm is the best one."""
    best = np.argmax(samples, axis=1) if higher_is_better else np.argmin(samples, axis=1)
    return [float(share) for share in np.bincount(best, minlength=samples.shape[1]) / samples.shape[0]]


def p_best_rates(
    rates: Sequence[Rate], higher_is_better: bool, draws: int = 20_000, seed: int = 0
) -> list[float]:
    """P(each arm's rate is the best) under independent Beta(1, 1) priors."""
    rng = np.random.default_rng(seed)
    samples = np.column_stack([rng.beta(1 + r.successes, 1 + r.n - r.successes, size=draws) for r in rates])
    return _share_best(samples, higher_is_better)


def unit_information_prior(arms: Sequence[Moments]) -> tuple[float, float]:
    """The prior for every arm's mean: Normal(pooled mean, pooled per-observation variance)."""
    pooled = Moments()
    for moments in arms:
        pooled = pooled.merge(moments)
    return pooled.mean, pooled.variance


def normal_posterior(moments: Moments, prior_mean: float, prior_variance: float) -> tuple[float, float]:
    """Posterior mean and variance of an arm's mean: Normal prior, Normal(x̄, s²/n) likelihood."""
    if moments.n < 2 or not moments.variance > 0:
        return (moments.mean if moments.n else prior_mean), prior_variance / (1 + moments.n)
    precision = 1 / prior_variance + moments.n / moments.variance if prior_variance > 0 else math.inf
    if math.isinf(precision):
        return prior_mean, 0.0
    mean = (prior_mean / prior_variance + moments.total / moments.variance) / precision
    return mean, 1 / precision


def p_best_normal(
    means: Sequence[float],
    variances: Sequence[float],
    higher_is_better: bool,
    draws: int = 20_000,
    seed: int = 0,
) -> list[float]:
    """P(each arm is best) when each arm's value is independently Normal(mean, variance)."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(
        np.array(means), np.sqrt(np.maximum(np.array(variances), 0.0)), size=(draws, len(means))
    )
    return _share_best(samples, higher_is_better)


def p_best_quantiles(
    histograms: Sequence[Histogram], q: float, higher_is_better: bool, draws: int = 4000, seed: int = 0
) -> list[float]:
    """P(each arm's q-quantile is best) by the Bayesian bootstrap: Dirichlet(counts) weights."""
    rng = np.random.default_rng(seed)
    columns = []
    for histogram in histograms:
        counts = np.array(histogram.counts, dtype=float)
        observed = counts > 0
        weights = np.zeros((draws, counts.size))
        weights[:, observed] = rng.dirichlet(counts[observed], size=draws)
        columns.append(histogram_quantiles(weights, q))
    return _share_best(np.column_stack(columns), higher_is_better)


# Planning --------------------------------------------------------------------------------------


def fixed_sample_size(
    delta: float, variance_a: float, variance_b: float, alpha: float = ALPHA, power: float = 0.8
) -> float:
    """Per-arm n for a two-sided fixed-sample z test at level alpha to detect a difference of
    ``delta`` with the given power: (z_{1-alpha/2} + z_power)^2 (var_a + var_b) / delta^2."""
    z = z_quantile(1 - alpha / 2) + z_quantile(power)
    return z * z * (variance_a + variance_b) / (delta * delta)
