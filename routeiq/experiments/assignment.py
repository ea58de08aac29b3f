"""Sticky, deterministic assignment of units to experiment arms.

A request's unit is the first present of its team, user, session and request id. The unit and the
experiment id hash (sha256) to one of ``BUCKETS`` buckets; each live arm owns a set of buckets in
proportion to its weight. Every worker and replica computes the same bucket and the same owner, so a
unit sees the same arm wherever it lands, with no shared state on the request path.

Changing weights moves as few units as possible: the new allocation starts from the previous one,
each arm that shrank gives up exactly the buckets it lost (its highest-numbered ones) and the arms
that grew take those, in arm order, lowest bucket first. The share of units that changes arm is
then exactly the total variation distance between the old and new bucket shares (half the sum of
the absolute weight-share changes). The allocation is a deterministic function of the history of
weights (``Allocation.from_history``); it can also be stored as ranges (``ranges``/``from_ranges``).

Shadow arms are decided for every assigned request and recorded but never serve, so they take no
part in the bucket split. A paused experiment assigns nobody (the group's own strategy serves).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

BUCKETS = 10_000
UNIT_KINDS = ("team", "user", "session", "request")
_UNOWNED = -1


class InvalidExperiment(ValueError):
    """An experiment's arms or weights are unusable; ``param`` names the offending field."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(frozen=True, slots=True)
class Arm:
    name: str
    weight: float
    shadow: bool = False  # decided and recorded for every assigned request, never served


@dataclass(frozen=True, slots=True)
class Unit:
    kind: str  # one of UNIT_KINDS
    value: str


@dataclass(frozen=True, slots=True)
class Assignment:
    arm: str  # the live arm that serves
    bucket: int
    unit: Unit
    shadows: tuple[str, ...]  # shadow arms whose decision is computed and recorded alongside


def unit_of(
    *, team: str | None = None, user: str | None = None, session: str | None = None, request_id: str
) -> Unit:
    """The first present of team, user, session and request id: the coarsest unit keeps the most
    requests of one caller on one arm (a team's users do not see two routers at once)."""
    for kind, value in zip(UNIT_KINDS, (team, user, session), strict=False):
        if value:
            return Unit(kind, value)
    return Unit("request", request_id)


def bucket_of(experiment_id: str, unit: Unit) -> int:
    """The unit's bucket in this experiment. The experiment id is part of the hash so that two
    experiments split the same units independently; the kind is part of it so that a team and a
    user that happen to share a name are different units."""
    digest = hashlib.sha256(f"{experiment_id}\x1f{unit.kind}\x1f{unit.value}".encode()).digest()
    # 64 bits modulo 10,000: the modulo bias is below 1e-15, far under any sampling noise.
    return int.from_bytes(digest[:8], "big") % BUCKETS


def validate_arms(arms: Sequence[Arm]) -> None:
    """Raise ``InvalidExperiment`` unless there are 2+ uniquely named arms, every weight is a finite
    number >= 0 and the live (non-shadow) arms' weights add up to something positive."""
    if len(arms) < 2:
        raise InvalidExperiment("arms", "an experiment needs at least two arms")
    seen: set[str] = set()
    for index, arm in enumerate(arms):
        if not arm.name:
            raise InvalidExperiment(f"arms[{index}].name", "every arm needs a name")
        if arm.name in seen:
            raise InvalidExperiment(f"arms[{index}].name", f"arm name {arm.name!r} is used twice")
        seen.add(arm.name)
        if not math.isfinite(arm.weight) or arm.weight < 0:
            raise InvalidExperiment(f"arms[{index}].weight", "weights must be finite numbers >= 0")
    if sum(arm.weight for arm in arms if not arm.shadow) <= 0:
        raise InvalidExperiment("arms", "the live (non-shadow) arms' weights must add up to more than 0")


def bucket_counts(weights: Mapping[str, float]) -> dict[str, int]:
    """Buckets per arm in proportion to the weights, adding up to exactly ``BUCKETS``: the floor of
    each share, then the leftover buckets to the largest remainders (ties: the earlier arm)."""
    total = sum(weights.values())
    if total <= 0:
        raise InvalidExperiment("arms", "the live arms' weights must add up to more than 0")
    exact = {name: BUCKETS * weight / total for name, weight in weights.items()}
    counts = {name: math.floor(share) for name, share in exact.items()}
    order = list(weights)
    leftover = BUCKETS - sum(counts.values())
    by_remainder = sorted(order, key=lambda name: (-(exact[name] - counts[name]), order.index(name)))
    for name in by_remainder[:leftover]:
        counts[name] += 1
    return counts


@dataclass(frozen=True, slots=True)
class Allocation:
    """Which arm owns each bucket: ``owners[bucket]`` indexes ``arms``."""

    arms: tuple[str, ...]
    owners: tuple[int, ...]

    @classmethod
    def initial(cls, weights: Mapping[str, float]) -> Allocation:
        """Contiguous ranges in arm order: the first arm owns the lowest buckets."""
        counts = bucket_counts(weights)
        owners: list[int] = []
        for index, name in enumerate(weights):
            owners.extend([index] * counts[name])
        return cls(tuple(weights), tuple(owners))

    @classmethod
    def from_history(cls, history: Sequence[Mapping[str, float]]) -> Allocation:
        """The allocation after each weight setting in turn, the first one laid out ``initial``."""
        if not history:
            raise InvalidExperiment("arms", "no weights given")
        allocation = cls.initial(history[0])
        for weights in history[1:]:
            allocation = allocation.reweighted(weights)
        return allocation

    def reweighted(self, weights: Mapping[str, float]) -> Allocation:
        """The allocation for new weights that moves the fewest buckets from this one. Arms missing
        from ``weights`` get 0; arms new in ``weights`` are added after the known ones."""
        arms = self.arms + tuple(name for name in weights if name not in self.arms)
        target = bucket_counts({name: weights.get(name, 0.0) for name in arms})
        owned: list[list[int]] = [[] for _ in arms]
        for bucket, owner in enumerate(self.owners):
            owned[owner].append(bucket)
        owners = list(self.owners)
        freed: list[int] = []
        for index, name in enumerate(arms):
            surplus = len(owned[index]) - target[name]
            if surplus > 0:
                freed.extend(owned[index][-surplus:])  # the highest-numbered: the rest stay put
        freed.sort()
        for bucket in freed:
            owners[bucket] = _UNOWNED
        position = 0
        for index, name in enumerate(arms):
            deficit = target[name] - len(owned[index])
            for bucket in freed[position : position + max(deficit, 0)]:
                owners[bucket] = index
            position += max(deficit, 0)
        return Allocation(arms, tuple(owners))

    def arm_for(self, bucket: int) -> str:
        return self.arms[self.owners[bucket]]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.arms, 0)
        for owner in self.owners:
            counts[self.arms[owner]] += 1
        return counts

    def ranges(self) -> dict[str, list[tuple[int, int]]]:
        """Half-open bucket ranges per arm, for storage and display."""
        ranges: dict[str, list[tuple[int, int]]] = {name: [] for name in self.arms}
        start = 0
        for bucket in range(1, BUCKETS + 1):
            if bucket == BUCKETS or self.owners[bucket] != self.owners[start]:
                ranges[self.arms[self.owners[start]]].append((start, bucket))
                start = bucket
        return ranges

    @classmethod
    def from_ranges(cls, ranges: Mapping[str, Iterable[Sequence[int]]]) -> Allocation:
        owners = [_UNOWNED] * BUCKETS
        arms = tuple(ranges)
        for index, name in enumerate(arms):
            for start, end in ranges[name]:
                owners[start:end] = [index] * (end - start)
        if _UNOWNED in owners:
            raise InvalidExperiment("allocation", "the ranges do not cover every bucket")
        return cls(arms, tuple(owners))


def moved_share(before: Allocation, after: Allocation) -> float:
    """The share of buckets (so of units, in expectation) whose arm differs between two allocations."""
    moved = sum(before.arm_for(b) != after.arm_for(b) for b in range(BUCKETS))
    return moved / BUCKETS


def live_weights(arms: Sequence[Arm]) -> dict[str, float]:
    return {arm.name: arm.weight for arm in arms if not arm.shadow}


@dataclass(frozen=True, slots=True)
class ExperimentSplit:
    """One experiment's arms and bucket allocation, as every worker holds it."""

    experiment_id: str
    arms: tuple[Arm, ...]
    allocation: Allocation
    running: bool = True  # False: paused or stopped, nobody is assigned

    @classmethod
    def create(cls, experiment_id: str, arms: Sequence[Arm]) -> ExperimentSplit:
        validate_arms(arms)
        return cls(experiment_id, tuple(arms), Allocation.initial(live_weights(arms)))

    def with_weights(self, weights: Mapping[str, float]) -> ExperimentSplit:
        """New weights for some or all arms (others keep theirs), moving the fewest units."""
        unknown = [name for name in weights if name not in {arm.name for arm in self.arms}]
        if unknown:
            raise InvalidExperiment("weights", f"unknown arm {unknown[0]!r}")
        arms = tuple(Arm(a.name, float(weights.get(a.name, a.weight)), a.shadow) for a in self.arms)
        validate_arms(arms)
        return ExperimentSplit(
            self.experiment_id, arms, self.allocation.reweighted(live_weights(arms)), self.running
        )

    def paused(self) -> ExperimentSplit:
        return ExperimentSplit(self.experiment_id, self.arms, self.allocation, running=False)

    def resumed(self) -> ExperimentSplit:
        return ExperimentSplit(self.experiment_id, self.arms, self.allocation, running=True)

    def assign(self, unit: Unit) -> Assignment | None:
        """The unit's live arm and the shadow arms to compute alongside; None while not running."""
        if not self.running:
            return None
        bucket = bucket_of(self.experiment_id, unit)
        shadows = tuple(arm.name for arm in self.arms if arm.shadow)
        return Assignment(self.allocation.arm_for(bucket), bucket, unit, shadows)
