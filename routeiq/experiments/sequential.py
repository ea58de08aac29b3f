"""Anytime-valid confidence sequences: the stopping rule that makes peeking safe.

A confidence sequence (CS) at level 1 - alpha covers the true value at *every* sample size at once
with probability at least 1 - alpha, so a dashboard may look after every request and stop the first
time the CS excludes "no difference" with the false-positive rate still at most alpha (default 0.05).
A fixed-sample interval looked at repeatedly does not have this property: in the simulation test,
peeking a 95% z interval 40 times stops falsely in about a quarter of equal-arm experiments.

The boundary is Robbins' normal mixture (Robbins 1970; Howard, Ramdas, McAuliffe & Sekhon 2021,
"Time-uniform, nonparametric, nonasymptotic confidence sequences"): for an estimate D of a
difference with variance V and a Normal(0, tau^2) mixing distribution over the effect, the
mixture likelihood ratio is the mSPRT of Johari, Pekelis & Walsh (2017, "Always valid inference"),

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 D^2 / (2 V (V + tau^2))),

a nonnegative martingale under "no difference", so by Ville's inequality P(ever Lambda >= 1/alpha) <=
alpha. Inverting it gives the CS  D +- sqrt(V (V + tau^2) / tau^2 * (2 log(1/alpha) + log(1 + tau^2/V))).

Means and rates use the sample variance in V (the asymptotic confidence sequences of Waudby-Smith,
Arnold, Wu, Wang & Ramdas 2021), which needs only n, sum and sum of squares per arm; a minimum
sample per arm keeps the plug-in honest. The mixing variance tau^2 only tunes power, never the
error guarantee: it is set so the boundary is tightest where a fixed-sample test with the stated
power would need its sample for the stated effect (``mixture_variance``).

Percentiles use an exact (non-asymptotic) CS: the q-quantile's CS is read off a CS for the share of
outcomes below it, a Bernoulli(q) mean that is sub-Gaussian with the Kearns-Saul variance proxy
(Howard & Ramdas 2022, "Sequential estimation of quantiles with applications to A/B-testing"),
widened to histogram bucket edges.
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np

from routeiq.experiments.statistics import ALPHA, Interval, histogram_quantiles, z_quantile
from routeiq.experiments.summary import BUCKET_LOWER_EDGES, BUCKET_UPPER_EDGES, Histogram


def optimal_mixture_ratio(alpha: float = ALPHA) -> float:
    """tau^2 / V at which the mixture boundary's width relative to sqrt(V) is smallest: the root of
    r = 2 log(1/alpha) + log(1 + r) (about 8.2 at alpha = 0.05)."""
    ratio = 2 * math.log(1 / alpha)
    for _ in range(100):  # a contraction (derivative 1 / (1 + r) < 1/6): ~15 steps to 1e-12
        previous, ratio = ratio, 2 * math.log(1 / alpha) + math.log1p(ratio)
        if abs(ratio - previous) < 1e-13:
            break
    return ratio


def mixture_variance(delta: float, alpha: float = ALPHA, power: float = 0.8) -> float:
    """tau^2 tuned to an effect of size ``delta``: the boundary is tightest at the variance V a
    fixed-sample two-sided test at level alpha would reach when it has ``power`` against delta,
    V = (delta / (z_{1-alpha/2} + z_power))^2. At alpha 0.05 and power 0.8 that is tau ~ delta."""
    planned = (delta / (z_quantile(1 - alpha / 2) + z_quantile(power))) ** 2
    return optimal_mixture_ratio(alpha) * planned


@overload
def mixture_radius(variance: float, tau2: float, alpha: float = ALPHA) -> float: ...
@overload
def mixture_radius(variance: np.ndarray, tau2: float | np.ndarray, alpha: float = ALPHA) -> np.ndarray: ...
def mixture_radius(variance, tau2, alpha=ALPHA):  # type: ignore[no-untyped-def]
    """Half-width of the two-sided normal-mixture CS at level 1 - alpha for an estimate of variance
    ``variance``; works elementwise on numpy arrays (the simulation test checks many runs at once).
    Tends to 0 as the variance does (V log(1/V) -> 0)."""
    if isinstance(variance, float | int) and isinstance(tau2, float | int):  # the verdict's case: no numpy
        if variance <= 0:
            return 0.0
        return math.sqrt(
            variance * (variance + tau2) / tau2 * (2 * math.log(1 / alpha) + math.log1p(tau2 / variance))
        )
    v = np.asarray(variance, dtype=float)
    safe = np.where(v > 0, v, 1.0)
    radius = np.sqrt(safe * (safe + tau2) / tau2 * (2 * math.log(1 / alpha) + np.log1p(tau2 / safe)))
    radius = np.where(v > 0, radius, 0.0)
    return float(radius) if np.ndim(radius) == 0 else radius


def difference_sequence(estimate: float, variance: float, tau2: float, alpha: float = ALPHA) -> Interval:
    """The CS for a difference: estimate +- mixture_radius."""
    if not (math.isfinite(estimate) and math.isfinite(variance)):
        return Interval(estimate, math.nan, math.nan)
    radius = mixture_radius(variance, tau2, alpha)
    return Interval(estimate, estimate - radius, estimate + radius)


def always_valid_p_value(estimate: float, variance: float, tau2: float) -> float:
    """1 / Lambda (capped at 1): the smallest alpha at which the CS would exclude 0 now. The running
    minimum over looks is also a valid p-value; this stateless one is never smaller than it."""
    if variance <= 0:
        return 0.0 if estimate != 0 else 1.0
    log_lambda = 0.5 * math.log(variance / (variance + tau2)) + tau2 * estimate**2 / (
        2 * variance * (variance + tau2)
    )
    return min(1.0, math.exp(-log_lambda))


def bernoulli_variance_proxy(q: float) -> float:
    """The smallest sub-Gaussian variance proxy of a Bernoulli(q) variable (Kearns & Saul 1998):
    (1 - 2q) / (2 log((1 - q) / q)), 1/4 at q = 1/2. At q = 0.95 it is 0.153 (vs q(1-q) = 0.0475)."""
    if abs(q - 0.5) < 1e-9:
        return 0.25
    return (1 - 2 * q) / (2 * math.log((1 - q) / q))


def quantile_sequence(
    histogram: Histogram, q: float, alpha: float = ALPHA, horizon: int = 10_000
) -> Interval:
    """An exact CS for the q-quantile of one arm's outcomes, from its histogram.

    The share of outcomes at or below the true quantile is a Bernoulli(q) mean; its normal-mixture
    CS (variance proxy from ``bernoulli_variance_proxy``, boundary tightest at ``horizon``
    outcomes) has radius r, so the quantile lies between the empirical (q - r)- and
    (q + r)-quantiles, taken at the outer edges of their buckets. An end beyond the data is
    unbounded (0 or infinity)."""
    n = histogram.n
    estimate = float(histogram_quantiles(np.array(histogram.counts), q)[0]) if n else math.nan
    if n == 0:
        return Interval(estimate, 0.0, math.inf)
    proxy = bernoulli_variance_proxy(q)
    tau2 = optimal_mixture_ratio(alpha) * proxy / horizon
    radius = mixture_radius(proxy / n, tau2, alpha)
    cumulative = np.cumsum(histogram.counts)
    low_rank, high_rank = (q - radius) * n, (q + radius) * n
    low = 0.0 if low_rank <= 0 else float(BUCKET_LOWER_EDGES[int(np.argmax(cumulative >= low_rank))])
    high = math.inf if high_rank >= n else float(BUCKET_UPPER_EDGES[int(np.argmax(cumulative > high_rank))])
    return Interval(estimate, low, high)


def sequential_sample_size(
    delta: float,
    variance_a: float,
    variance_b: float,
    tau2: float,
    alpha: float = ALPHA,
    power: float = 0.8,
) -> int:
    """Per-arm n at which the normal-mixture CS excludes 0 with probability ``power`` when the true
    difference is ``delta`` (per-observation variances as given, equal n): the smallest n with
    delta - radius(V) >= z_power sqrt(V), V = (var_a + var_b) / n. Found by bisection."""
    spread = variance_a + variance_b
    if delta <= 0 or not spread > 0:
        return 0

    def enough(n: float) -> bool:
        v = spread / n
        return delta - mixture_radius(v, tau2, alpha) >= z_quantile(power) * math.sqrt(v)

    low, high = 1.0, 2.0
    while not enough(high):
        low, high = high, high * 2
        if high > 1e12:
            return int(high)
    while high - low > 1:
        middle = (low + high) / 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return math.ceil(high)
