"""The verdict: states, winners per metric, guardrails, needed samples and the report's shape."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from routeiq.experiments.sequential import mixture_variance, sequential_sample_size
from routeiq.experiments.summary import ArmSummary, Histogram, Moments
from routeiq.experiments.verdict import Design, Guardrail, check_design, verdict


def arm(
    n: int,
    thumbs_up: float = 0.5,
    error_rate: float = 0.01,
    cost: float = 0.002,
    latency_ms: float = 800.0,
    seed: int = 0,
) -> ArmSummary:
    """An arm with n requests, all with feedback (0/1), lognormal latencies, gamma costs."""
    rng = np.random.default_rng(seed)
    ups = round(n * thumbs_up)
    return ArmSummary(
        requests=n,
        errors=round(n * error_rate),
        cost=Moments.of(rng.gamma(4.0, cost / 4.0, n)),
        feedback=Moments(n, float(ups), float(ups)),
        latency=Histogram.of(rng.lognormal(math.log(latency_ms), 0.5, n)),
    )


def test_below_the_minimum_sample_there_is_no_verdict_however_large_the_gap() -> None:
    result = verdict({"control": arm(50, 0.2), "b": arm(50, 0.9, seed=1)}, Design(control="control"))
    assert result.state == "not_enough_data" and result.winner is None
    assert all(needed is not None and needed >= 50 for needed in result.needed_samples.values())
    assert result.p_best["b"] > 0.99  # descriptive numbers are still reported


def test_a_clearly_better_arm_wins_on_the_feedback_score() -> None:
    result = verdict(
        {"control": arm(20_000, 0.50), "b": arm(20_000, 0.53, seed=1)}, Design(control="control")
    )
    assert (result.state, result.winner) == ("winner", "b")
    difference = result.differences["b"]
    assert difference.sequence.low > 0 and difference.fixed.low > difference.sequence.low
    assert result.p_best["b"] > 0.99 and result.needed_samples == {"control": 0, "b": 0}


@pytest.mark.parametrize(
    ("primary", "better"),
    [
        ("cost_per_request", {"cost": 0.0015}),
        ("error_rate", {"error_rate": 0.02}),
        ("latency_p95", {"latency_ms": 600.0}),
        ("quality_per_cost", {"cost": 0.0015}),
    ],
)
def test_each_primary_metric_finds_the_better_arm_in_its_own_direction(primary: str, better: dict) -> None:
    worse = {"cost": 0.002, "error_rate": 0.04, "latency_ms": 800.0}
    control = arm(20_000, **{k: v for k, v in worse.items() if k in better}, seed=2)  # type: ignore[arg-type]
    challenger = arm(20_000, **better, seed=3)
    design = Design(control="control", primary=primary, guardrails=())  # type: ignore[arg-type]
    result = verdict({"control": control, "b": challenger}, design)
    assert (result.state, result.winner) == ("winner", "b"), result.reason
    assert result.p_best["b"] > 0.95


def test_equal_arms_with_a_large_sample_end_with_no_difference() -> None:
    result = verdict({"control": arm(40_000, 0.5), "b": arm(40_000, 0.5, seed=1)}, Design(control="control"))
    assert result.state == "no_difference" and result.winner is None
    sequence = result.differences["b"].sequence
    assert -result.delta < sequence.low < sequence.high < result.delta


def test_unanimous_thumbs_up_in_both_arms_is_not_certainty() -> None:
    # Without the pseudo-observations both variances are 0 and the sequence collapses to a point.
    # With them, 150 of 150 in each arm leaves a few points of doubt either way (the rule of three
    # puts the 95% bound on a failure rate of 0/150 at 2%).
    arms = {"control": arm(150, 1.0), "b": arm(150, 1.0, seed=1)}
    sequence = verdict(arms, Design(control="control")).differences["b"].sequence
    assert sequence.low < -0.02 and sequence.high > 0.02


def test_a_small_gap_on_a_moderate_sample_keeps_collecting_and_says_how_much_more() -> None:
    result = verdict({"control": arm(2000, 0.50), "b": arm(2000, 0.52, seed=1)}, Design(control="control"))
    assert result.state == "collecting"
    delta = result.delta
    tau2 = mixture_variance(delta, 0.05, 0.8)
    expected = sequential_sample_size(delta, 0.25, 0.52 * 0.48, tau2, 0.05, 0.8) - 2000
    assert result.needed_samples["b"] == pytest.approx(expected, rel=0.01)


def test_a_guardrail_stops_an_arm_that_fails_more_even_when_it_wins_the_primary() -> None:
    arms = {"control": arm(3000, 0.5, error_rate=0.01), "b": arm(3000, 0.7, error_rate=0.08, seed=1)}
    result = verdict(arms, Design(control="control"))
    assert result.state == "guardrail_stop" and result.guardrail == {"arm": "b", "metric": "error_rate"}
    # A margin larger than the gap keeps it going: only "worse by more than the margin" stops.
    result = verdict(arms, Design(control="control", guardrails=(Guardrail("error_rate", margin=0.2),)))
    assert (result.state, result.winner) == ("winner", "b")


def test_a_latency_guardrail_uses_the_percentile_sequences() -> None:
    arms = {"control": arm(5000, latency_ms=500), "b": arm(5000, latency_ms=1500, seed=1)}
    design = Design(control="control", guardrails=(Guardrail("latency_p95"),))
    assert verdict(arms, design).guardrail == {"arm": "b", "metric": "latency_p95"}


def test_with_three_arms_the_winner_must_beat_every_other_arm() -> None:
    two_good = {"control": arm(20_000, 0.45), "b": arm(20_000, 0.53, seed=1), "c": arm(20_000, 0.53, seed=2)}
    result = verdict(two_good, Design(control="control"))
    assert result.state == "collecting" and result.winner is None
    assert result.differences["b"].sequence.low > 0 and result.differences["c"].sequence.low > 0
    one_good = {**two_good, "c": arm(20_000, 0.45, seed=2)}
    assert verdict(one_good, Design(control="control")).winner == "b"
    assert sum(result.p_best.values()) == pytest.approx(1.0)


def test_the_report_is_deterministic_and_strict_json() -> None:
    arms = {"control": arm(500, 0.5), "b": arm(500, 0.55, seed=1)}
    first = verdict(arms, Design(control="control", primary="latency_p95")).to_dict()
    assert first == verdict(arms, Design(control="control", primary="latency_p95")).to_dict()
    json.dumps(first, allow_nan=False)
    json.dumps(
        verdict({"control": ArmSummary(), "b": ArmSummary()}, Design(control="control")).to_dict(),
        allow_nan=False,
    )


def test_summaries_kept_as_counters_give_the_same_verdict() -> None:
    arms = {"control": arm(3000, 0.5), "b": arm(3000, 0.56, seed=1)}
    restored = {name: ArmSummary.from_counters(s.to_counters()) for name, s in arms.items()}
    assert verdict(restored, Design(control="control")) == verdict(arms, Design(control="control"))


@pytest.mark.parametrize(
    "design",
    [
        Design(control="nope"),
        Design(control="control", primary="vibes"),  # type: ignore[arg-type]
        Design(control="control", alpha=0.0),
        Design(control="control", effect_size=0.0),
        Design(control="control", guardrails=(Guardrail("nope"),)),  # type: ignore[arg-type]
    ],
)
def test_unusable_designs_are_refused(design: Design) -> None:
    with pytest.raises(ValueError):
        check_design(design, ["control", "b"])
