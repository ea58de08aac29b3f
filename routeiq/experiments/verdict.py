"""From per-arm summaries to an experiment's state, winner, estimates and the sample still needed.

States, checked in this order:

- ``not_enough_data``: some arm has fewer than ``min_samples_per_arm`` observations of the primary
  metric (or a guardrail metric). No verdict, however large the difference looks; ``needed_samples``
  says how many more each arm needs (at least up to the minimum, and up to the sample at which the
  stopping rule has ``power`` against the stated effect).
- ``guardrail_stop``: a guardrail metric's confidence sequence shows a non-control arm worse than the
  control by more than the guardrail's margin. The experiment should stop; ``guardrail`` names it.
- ``winner``: the primary metric's confidence sequences show one arm better than every other arm.
- ``no_difference``: every pairwise confidence sequence lies inside +-delta (the stated effect size):
  whatever difference there is, it is smaller than the one worth acting on. Stopping here is as
  anytime-valid as stopping for a winner.
- ``collecting``: none of the above yet.

Error guarantees. The primary comparison spends alpha (default 0.05) over all pairs of arms
(Bonferroni: alpha / pairs for each pairwise CS; percentiles: alpha / arms for each arm's CS, and
a difference is shown when two arms' CSs are disjoint). So, however often the verdict is computed,
the chance of ever naming a winner when all arms are equal is at most alpha. Guardrails spend their
own ``guardrail_alpha`` (default 0.05) over the non-control arms and guardrail metrics, so the chance
of ever stopping an experiment whose arms are no worse than the control is at most guardrail_alpha.
The variances in the sequences are plug-in estimates, and delta (which tunes the mixing variance)
is relative to the control's running estimate: both converge, which is why the sequences are
asymptotically anytime-valid and why ``min_samples_per_arm`` (default 100) comes first; the
simulation tests measure the resulting error rates (see tests/unit/test_experiment_sequential.py).
Estimates, fixed-sample intervals and p_best are descriptive (see ``statistics``) and never stop
anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from routeiq.experiments import sequential, statistics
from routeiq.experiments.statistics import ALPHA, Interval
from routeiq.experiments.summary import ArmSummary, Moments, bucket_edges, bucket_index

MetricName = Literal["feedback_score", "cost_per_request", "error_rate", "latency_p95", "quality_per_cost"]
State = Literal["collecting", "not_enough_data", "winner", "no_difference", "guardrail_stop"]


@dataclass(frozen=True, slots=True)
class Metric:
    name: MetricName
    kind: Literal["mean", "rate", "quantile", "ratio"]
    higher_is_better: bool
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("feedback_score", "mean", True, "mean feedback score in [0, 1] (thumbs up = 1)"),
        Metric("cost_per_request", "mean", False, "mean cost per request, USD"),
        Metric("error_rate", "rate", False, "share of requests that failed"),
        Metric("latency_p95", "quantile", False, "95th percentile of latency, ms"),
        Metric("quality_per_cost", "ratio", True, "mean feedback score / mean cost per request"),
    )
}
LATENCY_QUANTILE = 0.95


@dataclass(frozen=True, slots=True)
class Guardrail:
    """Stop when a non-control arm is worse than the control on ``metric`` by more than ``margin``
    (absolute, in the metric's unit). ``effect_size`` (relative to the control) only tunes how fast
    a worsening of that size is caught."""

    metric: MetricName = "error_rate"
    margin: float = 0.0
    effect_size: float = 0.5


@dataclass(frozen=True, slots=True)
class Design:
    """What an experiment measures and how sure it must be.

    ``effect_size`` is the smallest relative difference to the control worth acting on (0.05: 5%);
    it sets delta = effect_size * |control's estimate| (or * its per-observation standard deviation
    when the estimate is 0), the needed sample, and the ``no_difference`` band.
    """

    control: str
    primary: MetricName = "feedback_score"
    guardrails: tuple[Guardrail, ...] = (Guardrail(),)
    alpha: float = ALPHA
    guardrail_alpha: float = ALPHA
    effect_size: float = 0.05
    power: float = 0.8
    min_samples_per_arm: int = 100
    quantile_horizon: int = 10_000  # percentile CSs are tightest near this many outcomes per arm
    p_best_draws: int = 20_000
    seed: int = 0  # Monte Carlo and bootstrap: the same summaries always give the same numbers


@dataclass(frozen=True, slots=True)
class ArmEstimate:
    n: int
    interval: Interval  # fixed-sample
    sequence: Interval  # anytime-valid, at this arm's share of alpha (percentiles) or alpha


@dataclass(frozen=True, slots=True)
class Difference:
    """Arm minus control on the primary metric."""

    fixed: Interval  # fixed-sample interval: descriptive only
    sequence: Interval  # anytime-valid CS: what the stopping rule reads


@dataclass(frozen=True, slots=True)
class Verdict:
    state: State
    metric: MetricName
    winner: str | None
    reason: str
    delta: float  # the absolute effect size used (metric units)
    estimates: dict[str, ArmEstimate]
    differences: dict[str, Difference]
    p_best: dict[str, float]
    needed_samples: dict[str, int | None]  # more observations per arm; None when not computable yet
    guardrail: dict[str, str] | None = None  # {"arm", "metric"} on guardrail_stop

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "metric": self.metric,
            "winner": self.winner,
            "reason": self.reason,
            "delta": statistics.finite_or_none(self.delta),
            "estimates": {
                arm: {"n": e.n, "interval": e.interval.to_dict(), "sequence": e.sequence.to_dict()}
                for arm, e in self.estimates.items()
            },
            "differences": {
                arm: {"fixed": d.fixed.to_dict(), "sequence": d.sequence.to_dict()}
                for arm, d in self.differences.items()
            },
            "p_best": self.p_best,
            "needed_samples": self.needed_samples,
            "guardrail": self.guardrail,
        }


# Per-metric views of a summary -----------------------------------------------------------------


def sample_size(summary: ArmSummary, metric: Metric) -> int:
    if metric.name == "feedback_score":
        return summary.feedback.n
    if metric.name == "cost_per_request":
        return summary.cost.n
    if metric.name == "error_rate":
        return summary.requests
    if metric.name == "latency_p95":
        return summary.latency.n
    return min(summary.feedback.n, summary.cost.n)


def _moments(summary: ArmSummary, metric: Metric) -> Moments:
    return summary.feedback if metric.name == "feedback_score" else summary.cost


# One pseudo-observation at 0 and one at 1, added to bounded [0, 1] feedback scores when their
# variance feeds a confidence sequence (as the Beta(1, 1) prior does for rates): 100 thumbs up in a
# row must not look like a variance of 0, which would make the sequence a point.
_FEEDBACK_PSEUDO_OBSERVATIONS = Moments(2, 1.0, 1.0)


def gaussian_estimate(summary: ArmSummary, metric: Metric) -> tuple[float, float, float]:
    """(estimate, variance of the estimate, per-observation variance) for mean, rate and ratio
    metrics. A rate's variance uses the Beta(1, 1) posterior mean (s + 1) / (n + 2), and feedback
    scores' variance includes a pseudo-observation at 0 and one at 1, so neither is 0 at 0 or n
    successes (a rate of 0 after 100 requests is not known exactly)."""
    if metric.kind == "rate":
        rate = summary.error_rate
        smoothed = (rate.successes + 1) / (rate.n + 2)
        per_observation = smoothed * (1 - smoothed)
        return rate.value, per_observation / rate.n if rate.n else math.nan, per_observation
    if metric.kind == "mean":
        moments = _moments(summary, metric)
        variance = moments.variance
        if metric.name == "feedback_score" and moments.n:
            variance = moments.merge(_FEEDBACK_PSEUDO_OBSERVATIONS).variance
        return moments.mean, variance / moments.n if moments.n else math.nan, variance
    value, variance = statistics.ratio_estimate(summary.feedback, summary.cost)
    return value, variance, variance * sample_size(summary, metric)


def _fixed_interval(summary: ArmSummary, metric: Metric, alpha: float, seed: int) -> Interval:
    if metric.kind == "rate":
        return statistics.wilson_interval(summary.error_rate, alpha)
    if metric.kind == "mean":
        return statistics.mean_interval(_moments(summary, metric), alpha)
    if metric.kind == "quantile":
        return statistics.quantile_interval(summary.latency, LATENCY_QUANTILE, alpha, seed=seed)
    value, variance = statistics.ratio_estimate(summary.feedback, summary.cost)
    return statistics.normal_interval(value, variance, alpha)


def _fixed_difference(
    arm: ArmSummary, control: ArmSummary, metric: Metric, alpha: float, seed: int
) -> Interval:
    if metric.kind == "rate":
        return statistics.rate_difference(arm.error_rate, control.error_rate, alpha)
    if metric.kind == "mean":
        return statistics.mean_difference(_moments(arm, metric), _moments(control, metric), alpha)
    if metric.kind == "quantile":
        return statistics.quantile_difference(
            arm.latency, control.latency, LATENCY_QUANTILE, alpha, seed=seed
        )
    a, va, _ = gaussian_estimate(arm, metric)
    c, vc, _ = gaussian_estimate(control, metric)
    return statistics.normal_interval(a - c, va + vc, alpha)


def _p_best(arms: Mapping[str, ArmSummary], metric: Metric, design: Design) -> dict[str, float]:
    names = list(arms)
    draws, seed = design.p_best_draws, design.seed
    if metric.kind == "rate":
        shares = statistics.p_best_rates(
            [s.error_rate for s in arms.values()], metric.higher_is_better, draws, seed
        )
    elif metric.kind == "mean":
        moments = [_moments(s, metric) for s in arms.values()]
        prior_mean, prior_variance = statistics.unit_information_prior(moments)
        posteriors = [statistics.normal_posterior(m, prior_mean, prior_variance) for m in moments]
        shares = statistics.p_best_normal(
            [p[0] for p in posteriors], [p[1] for p in posteriors], metric.higher_is_better, draws, seed
        )
    elif metric.kind == "quantile":
        shares = statistics.p_best_quantiles(
            [s.latency for s in arms.values()],
            LATENCY_QUANTILE,
            metric.higher_is_better,
            min(draws, 4000),
            seed,
        )
    else:
        estimates = [gaussian_estimate(s, metric) for s in arms.values()]
        shares = statistics.p_best_normal(
            [e[0] for e in estimates], [e[1] for e in estimates], metric.higher_is_better, draws, seed
        )
    return dict(zip(names, shares, strict=True))


def absolute_effect(control: ArmSummary, metric: Metric, effect_size: float) -> float:
    """effect_size relative to the control's estimate; relative to its per-observation standard
    deviation when the estimate is 0 (an error rate of 0), and never below 1e-12."""
    if metric.kind == "quantile":
        value = statistics.quantile_of(control.latency, LATENCY_QUANTILE)
        return max(effect_size * abs(value), 1e-12) if math.isfinite(value) else math.nan
    value, _, per_observation = gaussian_estimate(control, metric)
    if not math.isfinite(value):
        return math.nan
    scale = abs(value) if value != 0 else math.sqrt(per_observation) if per_observation > 0 else 1.0
    return max(effect_size * scale, 1e-12)


# Pairwise anytime-valid comparisons -----------------------------------------------------------


def _pairwise_sequences(
    arms: Mapping[str, ArmSummary], metric: Metric, alpha: float, delta: float, design: Design
) -> tuple[dict[tuple[str, str], Interval], dict[str, Interval]]:
    """CS of (a - b) for every ordered pair, simultaneously at level 1 - alpha, and per-arm CSs."""
    names = list(arms)
    pairs = [(a, b) for a in names for b in names if a != b]
    result: dict[tuple[str, str], Interval] = {}
    per_arm: dict[str, Interval] = {}
    if metric.kind == "quantile":
        per_arm = {
            name: sequential.quantile_sequence(
                s.latency, LATENCY_QUANTILE, alpha / len(names), design.quantile_horizon
            )
            for name, s in arms.items()
        }
        for a, b in pairs:
            ia, ib = per_arm[a], per_arm[b]
            result[(a, b)] = Interval(ia.estimate - ib.estimate, ia.low - ib.high, ia.high - ib.low)
        return result, per_arm
    unordered = len(names) * (len(names) - 1) // 2
    pair_alpha = alpha / unordered
    tau2 = sequential.mixture_variance(delta, pair_alpha, design.power)
    estimates = {name: gaussian_estimate(s, metric) for name, s in arms.items()}
    for a, b in pairs:
        (ea, va, _), (eb, vb, _) = estimates[a], estimates[b]
        result[(a, b)] = sequential.difference_sequence(ea - eb, va + vb, tau2, pair_alpha)
    # Per-arm sequences (reported next to each arm's estimate) are tuned like the differences.
    arm_tau2 = sequential.mixture_variance(delta, alpha / len(names), design.power)
    for name, (estimate, variance, _) in estimates.items():
        per_arm[name] = sequential.difference_sequence(estimate, variance, arm_tau2, alpha / len(names))
    return result, per_arm


def _better(interval: Interval, higher_is_better: bool, margin: float = 0.0) -> bool:
    """The CS of (a - b) shows a better than b by more than margin."""
    return interval.low > margin if higher_is_better else interval.high < -margin


def _needed(
    arms: Mapping[str, ArmSummary], metric: Metric, design: Design, delta: float
) -> dict[str, int | None]:
    """More observations each arm needs: up to the minimum, and up to the per-arm n at which the
    stopping rule has ``power`` against an effect of size delta versus the control (equal n)."""
    names = list(arms)
    control = arms[design.control]
    pairs = max(1, len(names) * (len(names) - 1) // 2)
    needed: dict[str, int | None] = {}
    for name, summary in arms.items():
        have = sample_size(summary, metric)
        floor = max(0, design.min_samples_per_arm - have)
        target: float | None
        if not math.isfinite(delta):
            target = None
        elif metric.kind == "quantile":
            target = _quantile_needed(arms, design, delta)
        else:
            _, _, var_c = gaussian_estimate(control, metric)
            _, _, var_a = gaussian_estimate(summary, metric)
            var_a = var_a if math.isfinite(var_a) else var_c
            if not (math.isfinite(var_c) and var_c > 0):
                target = None
            else:
                alpha = design.alpha / pairs
                tau2 = sequential.mixture_variance(delta, alpha, design.power)
                target = sequential.sequential_sample_size(delta, var_c, var_a, tau2, alpha, design.power)
        needed[name] = None if target is None else max(floor, math.ceil(target) - have)
        if target is None and floor:
            needed[name] = floor
    return needed


def _quantile_needed(arms: Mapping[str, ArmSummary], design: Design, delta: float) -> float | None:
    """Approximate per-arm n at which two arms' p95 CSs separate for a true gap of delta: each CS is
    about r(n) / density wide on either side, so r(n) <= delta * density / 2. The density at the
    control's p95 comes from its histogram bucket; None while that bucket is empty or open."""
    control = arms[design.control].latency
    n = control.n
    if n == 0:
        return None
    value = statistics.quantile_of(control, LATENCY_QUANTILE)
    index = bucket_index(value)
    low, high = bucket_edges(index)
    if not math.isfinite(high) or control.counts[index] == 0:
        return None
    density = control.counts[index] / n / (high - low)
    target_radius = delta * density / 2
    proxy = sequential.bernoulli_variance_proxy(LATENCY_QUANTILE)
    alpha = design.alpha / len(arms)
    tau2 = sequential.optimal_mixture_ratio(alpha) * proxy / design.quantile_horizon
    size = 2.0
    while sequential.mixture_radius(proxy / size, tau2, alpha) > target_radius and size < 1e12:
        size *= 1.25
    return size


# The verdict -----------------------------------------------------------------------------------


def verdict(arms: Mapping[str, ArmSummary], design: Design) -> Verdict:
    """The experiment's state from its arms' summaries (control included, by name)."""
    check_design(design, list(arms))
    metric = METRICS[design.primary]
    control = arms[design.control]
    delta = absolute_effect(control, metric, design.effect_size)
    estimates = {
        name: ArmEstimate(
            sample_size(s, metric),
            _fixed_interval(s, metric, design.alpha, design.seed),
            Interval(math.nan, math.nan, math.nan),
        )
        for name, s in arms.items()
    }
    needed = _needed(arms, metric, design, delta)
    p_best = _p_best(arms, metric, design) if all(e.n > 0 for e in estimates.values()) else {}
    differences: dict[str, Difference] = {}

    def result(state: State, reason: str, winner: str | None = None, **kw: Any) -> Verdict:
        return Verdict(
            state, design.primary, winner, reason, delta, estimates, differences, p_best, needed, **kw
        )

    short = sorted(
        {name for name, s in arms.items() if sample_size(s, metric) < design.min_samples_per_arm}
        | {
            name
            for name, s in arms.items()
            for g in design.guardrails
            if sample_size(s, METRICS[g.metric]) < design.min_samples_per_arm
        }
    )
    if short or not math.isfinite(delta):
        return result(
            "not_enough_data", f"fewer than {design.min_samples_per_arm} observations: {', '.join(short)}"
        )

    stop = _guardrail_breach(arms, design)
    sequences, per_arm = _pairwise_sequences(arms, metric, design.alpha, delta, design)
    for name, estimate in estimates.items():
        estimates[name] = ArmEstimate(estimate.n, estimate.interval, per_arm[name])
    for name, s in arms.items():
        if name != design.control:
            differences[name] = Difference(
                _fixed_difference(s, control, metric, design.alpha, design.seed),
                sequences[(name, design.control)],
            )
    if stop is not None:
        arm, guardrail_metric = stop
        return result(
            "guardrail_stop",
            f"{arm} is worse than {design.control} on {guardrail_metric}",
            guardrail={"arm": arm, "metric": guardrail_metric},
        )
    higher = metric.higher_is_better
    for name in arms:
        if all(_better(sequences[(name, other)], higher) for other in arms if other != name):
            return result("winner", f"{name} is better than every other arm on {metric.name}", winner=name)
    if all(-delta < seq.low and seq.high < delta for seq in sequences.values()):
        return result("no_difference", f"every difference on {metric.name} is within +-{delta:.6g}")
    return result("collecting", "no arm is better than the others yet")


def _guardrail_breach(arms: Mapping[str, ArmSummary], design: Design) -> tuple[str, str] | None:
    """The first (arm, metric) whose guardrail CS shows the arm worse than the control by more than
    the margin, at guardrail_alpha split over non-control arms x guardrails."""
    challengers = [name for name in arms if name != design.control]
    if not design.guardrails or not challengers:
        return None
    alpha = design.guardrail_alpha / (len(challengers) * len(design.guardrails))
    control = arms[design.control]
    for guardrail in design.guardrails:
        metric = METRICS[guardrail.metric]
        delta = absolute_effect(control, metric, guardrail.effect_size)
        if not math.isfinite(delta):
            continue
        if metric.kind == "quantile":
            cs_control = sequential.quantile_sequence(
                control.latency, LATENCY_QUANTILE, alpha / 2, design.quantile_horizon
            )
        for name in challengers:
            if metric.kind == "quantile":
                cs = sequential.quantile_sequence(
                    arms[name].latency, LATENCY_QUANTILE, alpha / 2, design.quantile_horizon
                )
                difference = Interval(
                    cs.estimate - cs_control.estimate, cs.low - cs_control.high, cs.high - cs_control.low
                )
            else:
                (ea, va, _), (ec, vc, _) = (
                    gaussian_estimate(arms[name], metric),
                    gaussian_estimate(control, metric),
                )
                tau2 = sequential.mixture_variance(delta, alpha, design.power)
                difference = sequential.difference_sequence(ea - ec, va + vc, tau2, alpha)
            # "worse" is the opposite of better: the control is better than the arm by > margin.
            flipped = Interval(-difference.estimate, -difference.high, -difference.low)
            if _better(flipped, metric.higher_is_better, guardrail.margin):
                return name, guardrail.metric
    return None


def summaries_from_counters(counters: Mapping[str, Mapping[str, Any]]) -> dict[str, ArmSummary]:
    """Arm name -> counters hash (as kept in the StateStore) to arm name -> summary."""
    return {name: ArmSummary.from_counters(values) for name, values in counters.items()}


def check_design(design: Design, arm_names: Sequence[str]) -> None:
    """Raise ValueError for a design that cannot be evaluated on these arms."""
    if len(arm_names) < 2:
        raise ValueError("an experiment needs at least two arms")
    if design.control not in arm_names:
        raise ValueError(f"control {design.control!r} is not one of the arms")
    if design.primary not in METRICS:
        raise ValueError(f"unknown primary metric {design.primary!r}")
    for guardrail in design.guardrails:
        if guardrail.metric not in METRICS:
            raise ValueError(f"unknown guardrail metric {guardrail.metric!r}")
    if not (0 < design.alpha < 1 and 0 < design.guardrail_alpha < 1 and 0 < design.power < 1):
        raise ValueError("alpha, guardrail_alpha and power must be between 0 and 1")
    if design.effect_size <= 0 or design.min_samples_per_arm < 2:
        raise ValueError("effect_size must be > 0 and min_samples_per_arm >= 2")
