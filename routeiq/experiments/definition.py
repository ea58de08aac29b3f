"""An experiment as the gateway keeps it: its group, arms, unit order, design and state.

A definition is plain data (``to_dict``/``from_dict`` give the JSON every worker applies and the
durable store keeps). The bucket allocation is not stored: it is a deterministic function of the
history of live weights (``assignment.Allocation.from_history``), so every worker rebuilds the same
one. Validation here needs no I/O (the strategy names come from the catalogue); whether a group
exists and a strategy can be built in this process is the wiring's to check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from routeiq.experiments.assignment import (
    UNIT_KINDS,
    Allocation,
    Arm,
    ExperimentSplit,
    InvalidExperiment,
    Unit,
    live_weights,
    validate_arms,
)
from routeiq.experiments.verdict import METRICS, Design, Guardrail
from routeiq.routing.catalogue import strategy_names
from routeiq.routing.profiles import PROFILES

ExperimentState = Literal["running", "paused", "stopped"]
STATES = ("running", "paused", "stopped")
DEFAULT_UNIT = UNIT_KINDS  # team > user > session > request
ARM_PARAMS = frozenset({"profile"})  # what an arm may set besides its strategy
MAX_WEIGHT = 1e9  # weights are relative: bounded so that their sum stays a finite number
_DESIGN = Design(control="")  # the defaults: alpha, effect size, power, minimum sample


@dataclass(frozen=True, slots=True)
class ArmSpec:
    name: str
    strategy: str
    weight: float
    shadow: bool = False
    params: dict[str, Any] = field(default_factory=dict)  # {"profile": "eco"}: the arm's routing profile

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "strategy": self.strategy,
            "weight": self.weight,
            "shadow": self.shadow,
            "params": dict(self.params),
        }


@dataclass(frozen=True, slots=True)
class ExperimentDefinition:
    id: str
    group: str
    arms: tuple[ArmSpec, ...]
    control: str
    name: str = ""
    unit: tuple[str, ...] = DEFAULT_UNIT
    primary: str = "feedback_score"
    guardrails: tuple[Guardrail, ...] = (Guardrail(),)
    alpha: float = _DESIGN.alpha
    effect_size: float = _DESIGN.effect_size
    power: float = _DESIGN.power
    min_samples_per_arm: int = _DESIGN.min_samples_per_arm
    state: ExperimentState = "running"
    weights_history: tuple[dict[str, float], ...] = ()  # every live-weight setting, oldest first
    created_at: float = 0.0
    updated_at: float = 0.0
    created_by: str | None = None
    stopped_reason: str | None = None
    promoted_arm: str | None = None

    @property
    def live_arms(self) -> tuple[ArmSpec, ...]:
        return tuple(arm for arm in self.arms if not arm.shadow)

    def arm(self, name: str) -> ArmSpec | None:
        return next((arm for arm in self.arms if arm.name == name), None)

    def design(self) -> Design:
        return Design(
            control=self.control,
            primary=self.primary,  # type: ignore[arg-type]  # checked in validate
            guardrails=self.guardrails,
            alpha=self.alpha,
            effect_size=self.effect_size,
            power=self.power,
            min_samples_per_arm=self.min_samples_per_arm,
        )

    def split(self) -> ExperimentSplit:
        """The bucket split every worker computes alike from the weight history."""
        arms = tuple(Arm(a.name, a.weight, a.shadow) for a in self.arms)
        history = self.weights_history or (live_weights(arms),)
        return ExperimentSplit(self.id, arms, Allocation.from_history(history), self.state == "running")

    def with_weights(self, weights: Mapping[str, float], now: float) -> ExperimentDefinition:
        """New weights for some arms; ``InvalidExperiment`` (param ``weights``) if unusable."""
        known = {arm.name for arm in self.arms}
        for name, weight in weights.items():
            if name not in known:
                raise InvalidExperiment(f"weights.{name}", f"unknown arm {name!r}")
            if not 0 <= weight <= MAX_WEIGHT:  # (NaN fails this too)
                raise InvalidExperiment(
                    f"weights.{name}", f"weights must be numbers from 0 to {MAX_WEIGHT:g}"
                )
        arms = tuple(replace(a, weight=float(weights.get(a.name, a.weight))) for a in self.arms)
        live = {a.name: a.weight for a in arms if not a.shadow}
        if sum(live.values()) <= 0:
            raise InvalidExperiment(
                "weights", "the live (non-shadow) arms' weights must add up to more than 0"
            )
        return replace(self, arms=arms, weights_history=(*self.weights_history, live), updated_at=now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "group": self.group,
            "arms": [arm.to_dict() for arm in self.arms],
            "control": self.control,
            "unit": list(self.unit),
            "primary": self.primary,
            "guardrails": [
                {"metric": g.metric, "margin": g.margin, "effect_size": g.effect_size}
                for g in self.guardrails
            ],
            "alpha": self.alpha,
            "effect_size": self.effect_size,
            "power": self.power,
            "min_samples_per_arm": self.min_samples_per_arm,
            "state": self.state,
            "weights_history": [dict(w) for w in self.weights_history],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "created_by": self.created_by,
            "stopped_reason": self.stopped_reason,
            "promoted_arm": self.promoted_arm,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentDefinition:
        return cls(
            id=str(data["id"]),
            name=str(data.get("name") or ""),
            group=str(data["group"]),
            arms=tuple(
                ArmSpec(
                    str(a["name"]),
                    str(a["strategy"]),
                    float(a["weight"]),
                    bool(a.get("shadow", False)),
                    dict(a.get("params") or {}),
                )
                for a in data["arms"]
            ),
            control=str(data["control"]),
            unit=tuple(data.get("unit") or DEFAULT_UNIT),
            primary=str(data.get("primary", "feedback_score")),
            guardrails=tuple(
                Guardrail(g["metric"], float(g.get("margin", 0.0)), float(g.get("effect_size", 0.5)))
                for g in data.get("guardrails", [])
            ),
            alpha=float(data.get("alpha", _DESIGN.alpha)),
            effect_size=float(data.get("effect_size", _DESIGN.effect_size)),
            power=float(data.get("power", _DESIGN.power)),
            min_samples_per_arm=int(data.get("min_samples_per_arm", _DESIGN.min_samples_per_arm)),
            state=data.get("state", "running"),
            weights_history=tuple(
                {str(k): float(v) for k, v in w.items()} for w in data.get("weights_history", [])
            ),
            created_at=float(data.get("created_at", 0.0)),
            updated_at=float(data.get("updated_at", 0.0)),
            created_by=data.get("created_by"),
            stopped_reason=data.get("stopped_reason"),
            promoted_arm=data.get("promoted_arm"),
        )


def validate(definition: ExperimentDefinition, arm_groups: Sequence[str | None] = ()) -> None:
    """Raise ``InvalidExperiment`` naming the offending field (``param``). ``arm_groups``: the group
    each arm was given for (None: not said), which must be the experiment's own."""
    arms = definition.arms
    validate_arms([Arm(a.name, a.weight, a.shadow) for a in arms])
    for index, arm in enumerate(arms):
        if arm.weight > MAX_WEIGHT:
            raise InvalidExperiment(
                f"arms[{index}].weight", f"weights must be numbers from 0 to {MAX_WEIGHT:g}"
            )
    known = set(strategy_names())
    for index, arm in enumerate(arms):
        if arm.strategy not in known:
            raise InvalidExperiment(f"arms[{index}].strategy", f"unknown routing strategy {arm.strategy!r}")
        unknown = set(arm.params) - ARM_PARAMS
        if unknown:
            raise InvalidExperiment(
                f"arms[{index}].params", f"unknown parameter {sorted(unknown)[0]!r} (known: profile)"
            )
        profile = arm.params.get("profile")
        if profile is not None and profile not in PROFILES:
            raise InvalidExperiment(f"arms[{index}].params.profile", f"unknown profile {profile!r}")
    for index, group in enumerate(arm_groups):
        if group is not None and group != definition.group:
            raise InvalidExperiment(
                f"arms[{index}].group",
                f"arm is for group {group!r}, the experiment for {definition.group!r}",
            )
    control = definition.arm(definition.control)
    if control is None or control.shadow:
        raise InvalidExperiment("control", "the control must be one of the live (non-shadow) arms")
    if not definition.unit or any(kind not in UNIT_KINDS for kind in definition.unit):
        raise InvalidExperiment("unit", f"unit kinds are {', '.join(UNIT_KINDS)}, in the order to try")
    if len(set(definition.unit)) != len(definition.unit):
        raise InvalidExperiment("unit", "each unit kind at most once")
    if definition.primary not in METRICS:
        raise InvalidExperiment("primary", f"unknown metric; one of {', '.join(METRICS)}")
    for index, guardrail in enumerate(definition.guardrails):
        if guardrail.metric not in METRICS:
            raise InvalidExperiment(f"guardrails[{index}].metric", f"unknown metric {guardrail.metric!r}")
        if guardrail.margin < 0 or guardrail.effect_size <= 0:
            raise InvalidExperiment(f"guardrails[{index}]", "margin must be >= 0 and effect_size > 0")
    if not 0 < definition.alpha < 1:
        raise InvalidExperiment("alpha", "alpha must be between 0 and 1")
    if not 0 < definition.power < 1:
        raise InvalidExperiment("power", "power must be between 0 and 1")
    if definition.effect_size <= 0:
        raise InvalidExperiment("effect_size", "effect_size must be > 0")
    if definition.min_samples_per_arm < 2:
        raise InvalidExperiment("min_samples_per_arm", "min_samples_per_arm must be at least 2")


def unit_in_order(
    order: Sequence[str], *, team: str | None, user: str | None, session: str | None, request_id: str
) -> Unit:
    """The first present unit in the experiment's order; the request id when none is."""
    values = {"team": team, "user": user, "session": session, "request": request_id}
    for kind in order:
        value = values.get(kind)
        if value:
            return Unit(kind, value)
    return Unit("request", request_id)
