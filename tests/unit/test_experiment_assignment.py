"""Sticky assignment: deterministic, in proportion to the weights, minimal movement on reweighting."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from routeiq.experiments.assignment import (
    BUCKETS,
    Allocation,
    Arm,
    ExperimentSplit,
    InvalidExperiment,
    Unit,
    bucket_counts,
    bucket_of,
    moved_share,
    unit_of,
)


def test_unit_is_the_first_present_of_team_user_session_request() -> None:
    assert unit_of(team="t", user="u", session="s", request_id="r") == Unit("team", "t")
    assert unit_of(team=None, user="u", session="s", request_id="r") == Unit("user", "u")
    assert unit_of(team="", user=None, session="s", request_id="r") == Unit("session", "s")
    assert unit_of(request_id="r") == Unit("request", "r")


def test_bucket_is_sha256_of_experiment_and_unit_and_stable() -> None:
    unit = Unit("user", "alice")
    expected = int.from_bytes(hashlib.sha256(b"exp-1\x1fuser\x1falice").digest()[:8], "big") % BUCKETS
    assert bucket_of("exp-1", unit) == expected
    # Pinned: a change to the hashing would silently reshuffle every running experiment.
    assert bucket_of("exp-1", unit) == bucket_of("exp-1", Unit("user", "alice"))
    assert len({bucket_of(f"exp-{i}", unit) for i in range(50)}) > 40  # experiments split independently


def test_assignment_is_deterministic_across_separately_built_splits() -> None:
    arms = [Arm("control", 50), Arm("knn", 30), Arm("cascade", 20)]
    first = ExperimentSplit.create("exp-7", arms)
    second = ExperimentSplit.create("exp-7", list(arms))
    for i in range(2000):
        unit = Unit("user", f"u{i}")
        a, b = first.assign(unit), second.assign(unit)
        assert a is not None and b is not None and a.arm == b.arm and a.bucket == b.bucket


def test_bucket_counts_add_up_and_follow_weights() -> None:
    assert bucket_counts({"a": 1, "b": 1, "c": 1}) == {"a": 3334, "b": 3333, "c": 3333}
    assert bucket_counts({"a": 0.9, "b": 0.1}) == {"a": 9000, "b": 1000}
    assert bucket_counts({"a": 5, "b": 0}) == {"a": BUCKETS, "b": 0}
    with pytest.raises(InvalidExperiment):
        bucket_counts({"a": 0, "b": 0})


@pytest.mark.parametrize("weights", [[50, 50], [70, 20, 10], [1, 1, 1, 1]])
def test_distribution_of_100k_units_is_close_to_the_weights(weights: list[int]) -> None:
    arms = [Arm(f"arm{i}", w) for i, w in enumerate(weights)]
    split = ExperimentSplit.create("exp-dist", arms)
    names = [arm.name for arm in arms]
    observed = np.zeros(len(arms))
    n = 100_000
    for i in range(n):
        assignment = split.assign(Unit("request", f"req-{i}"))
        assert assignment is not None
        observed[names.index(assignment.arm)] += 1
    expected = n * np.array(weights, dtype=float) / sum(weights)
    chi_square = float(((observed - expected) ** 2 / expected).sum())
    # Chi-square with k-1 <= 3 degrees of freedom: 16.3 is its 99.9th percentile for 3.
    assert chi_square < 16.3, (observed, expected)


def test_shadow_arms_take_no_buckets_and_are_reported_on_every_assignment() -> None:
    split = ExperimentSplit.create("exp-s", [Arm("control", 1), Arm("knn", 5, shadow=True)])
    assert split.allocation.counts() == {"control": BUCKETS}
    assignment = split.assign(Unit("user", "x"))
    assert assignment is not None and assignment.arm == "control" and assignment.shadows == ("knn",)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"a": 50, "b": 50}, {"a": 90, "b": 10}),
        ({"a": 90, "b": 10}, {"a": 50, "b": 50}),
        ({"a": 50, "b": 30, "c": 20}, {"a": 20, "b": 30, "c": 50}),
        ({"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 0}),
        ({"a": 1, "b": 1}, {"a": 1, "b": 1, "c": 2}),  # an arm added
    ],
)
def test_reweighting_moves_exactly_the_changed_share(before: dict, after: dict) -> None:
    old = Allocation.initial(before)
    new = old.reweighted(after)
    old_share = {k: v / BUCKETS for k, v in old.counts().items()}
    new_share = {k: v / BUCKETS for k, v in new.counts().items()}
    arms = set(old_share) | set(new_share)
    total_variation = sum(abs(new_share.get(a, 0) - old_share.get(a, 0)) for a in arms) / 2
    assert moved_share(old, new) == pytest.approx(total_variation, abs=1e-12)
    assert new.counts() == bucket_counts({a: after.get(a, 0) for a in new.arms})


def test_units_that_move_only_move_from_shrinking_to_growing_arms() -> None:
    split = ExperimentSplit.create("exp-m", [Arm("a", 50), Arm("b", 30), Arm("c", 20)])
    changed = split.with_weights({"a": 40, "c": 30})
    for i in range(5000):
        unit = Unit("session", f"s{i}")
        before, after = split.assign(unit), changed.assign(unit)
        assert before is not None and after is not None
        if before.arm != after.arm:
            assert (before.arm, after.arm) == ("a", "c")
        if before.arm in ("b", "c"):
            assert after.arm == before.arm  # b and c lose nothing


def test_allocation_is_a_function_of_the_weight_history_and_round_trips_as_ranges() -> None:
    history = [{"a": 50, "b": 50}, {"a": 80, "b": 20}, {"a": 30, "b": 70}]
    first = Allocation.from_history(history)
    assert first == Allocation.from_history([dict(w) for w in history])
    assert Allocation.from_ranges(first.ranges()) == first
    assert Allocation.initial({"a": 1, "b": 3}).ranges() == {"a": [(0, 2500)], "b": [(2500, 10000)]}


def test_paused_experiment_assigns_nobody_and_resumes_with_the_same_assignments() -> None:
    split = ExperimentSplit.create("exp-p", [Arm("a", 1), Arm("b", 1)])
    units = [Unit("user", f"u{i}") for i in range(200)]
    before = [split.assign(u) for u in units]
    assert all(split.paused().assign(u) is None for u in units)
    assert [split.paused().resumed().assign(u) for u in units] == before


def test_an_arm_at_weight_zero_gets_no_units_and_its_units_go_to_the_others() -> None:
    split = ExperimentSplit.create("exp-z", [Arm("a", 1), Arm("b", 1), Arm("c", 1)])
    without_c = split.with_weights({"c": 0})
    arms = {without_c.assign(Unit("user", f"u{i}")).arm for i in range(3000)}  # type: ignore[union-attr]
    assert arms == {"a", "b"}


@pytest.mark.parametrize(
    ("arms", "param"),
    [
        ([Arm("a", 1)], "arms"),
        ([Arm("a", 1), Arm("a", 1)], "arms[1].name"),
        ([Arm("a", 1), Arm("b", -1)], "arms[1].weight"),
        ([Arm("a", 1), Arm("b", float("nan"))], "arms[1].weight"),
        ([Arm("a", 0), Arm("b", 0)], "arms"),
        ([Arm("a", 0), Arm("b", 1, shadow=True)], "arms"),
    ],
)
def test_invalid_arms_name_the_param(arms: list[Arm], param: str) -> None:
    with pytest.raises(InvalidExperiment) as raised:
        ExperimentSplit.create("exp", arms)
    assert raised.value.param == param


def test_reweighting_an_unknown_arm_is_refused() -> None:
    split = ExperimentSplit.create("exp", [Arm("a", 1), Arm("b", 1)])
    with pytest.raises(InvalidExperiment) as raised:
        split.with_weights({"zzz": 1})
    assert raised.value.param == "weights"
