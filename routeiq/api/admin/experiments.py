"""Admin: A/B experiments between routing strategies (``routeiq.experiments``).

Create, list, read (the definition with the live arm table, the verdict and the estimate's recent
series), change weights or state, delete, and promote an arm to be the group's strategy. Every
change is audited and applies on every worker and replica (the live subject ``experiments``);
``version`` in the answers is that change's number in ``GET /admin/changes``.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from routeiq.api.errors import APIError, bad_request
from routeiq.api.runtime import runtime_of
from routeiq.experiments import statistics
from routeiq.experiments.assignment import BUCKETS, InvalidExperiment
from routeiq.experiments.definition import ArmSpec, ExperimentDefinition, validate
from routeiq.experiments.live import UnknownExperiment
from routeiq.experiments.outcomes import decode, summary_of
from routeiq.experiments.verdict import LATENCY_QUANTILE, Design, Guardrail
from routeiq.governance.call import current_call
from routeiq.routing.registry import create_strategy
from routeiq.state.base import StateUnavailable

router = APIRouter(prefix="/admin/experiments", tags=["admin", "experiments"])

MetricName = Literal["feedback_score", "cost_per_request", "error_rate", "latency_p95", "quality_per_cost"]
UnitKind = Literal["team", "user", "session", "request"]
_DESIGN = Design(control="")


# --- requests ---


def _default_unit() -> list[UnitKind]:
    return ["team", "user", "session", "request"]


class ArmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    strategy: str = Field(description="A routing strategy name (GET /admin/strategy lists them).")
    weight: float = Field(default=1.0, description="Share of units, relative to the other live arms.")
    shadow: bool = Field(default=False, description="Decided and recorded for every request, never served.")
    params: dict[str, Any] = Field(default_factory=dict, description='Optional: {"profile": "eco"}.')
    group: str | None = Field(default=None, description="If given, must be the experiment's group.")


class GuardrailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: MetricName = "error_rate"
    margin: float = Field(default=0.0, ge=0, description="Absolute, in the metric's unit.")
    effect_size: float = Field(default=0.5, gt=0)


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: str
    name: str = Field(default="", max_length=200)
    arms: list[ArmIn]
    control: str | None = Field(default=None, description="Default: the first live arm.")
    unit: list[UnitKind] = Field(default_factory=_default_unit)
    primary: MetricName = "feedback_score"
    guardrails: list[GuardrailIn] = Field(default_factory=lambda: [GuardrailIn()])
    alpha: float = _DESIGN.alpha
    effect_size: float = _DESIGN.effect_size
    power: float = _DESIGN.power
    min_samples_per_arm: int = _DESIGN.min_samples_per_arm


class ExperimentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float] | None = Field(default=None, description="Arm name -> new weight.")
    state: Literal["running", "paused", "stopped"] | None = None


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arm: str | None = Field(default=None, description="Default: the verdict's winner.")


# --- responses ---


class ArmOut(BaseModel):
    name: str
    strategy: str
    weight: float
    shadow: bool
    params: dict[str, Any]


class GuardrailOut(BaseModel):
    metric: str
    margin: float
    effect_size: float


class ExperimentOut(BaseModel):
    id: str
    name: str
    group: str
    arms: list[ArmOut]
    control: str
    unit: list[str]
    primary: str
    guardrails: list[GuardrailOut]
    alpha: float
    effect_size: float
    power: float
    min_samples_per_arm: int
    state: Literal["running", "paused", "stopped"]
    created_at: float
    updated_at: float
    created_by: str | None
    stopped_reason: str | None
    promoted_arm: str | None


class ExperimentChanged(BaseModel):
    experiment: ExperimentOut
    version: int | None  # the change's number in GET /admin/changes (subject ``experiments``)


class ExperimentList(BaseModel):
    data: list[ExperimentOut]


class Moments(BaseModel):
    n: int
    mean: float | None


class Outcomes(BaseModel):
    requests: int
    errors: int
    error_rate: float | None
    errors_by_class: dict[str, int]
    cost_usd: Moments
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    input_tokens: int
    output_tokens: int
    tiers: dict[str, int]


class ShadowDecisions(BaseModel):
    decisions: int
    agrees: int  # picked the deployment that served
    errors: int
    tiers: dict[str, int]


class ArmRow(BaseModel):
    name: str
    strategy: str
    weight: float
    shadow: bool
    share: float  # of units, from the bucket split (0 for a shadow arm)
    outcomes: Outcomes  # every request of the arm (those a fallback served included)
    fallback: Outcomes  # the requests a fallback group served, reported on their own
    feedback: Moments
    shadow_decisions: ShadowDecisions | None


class IntervalOut(BaseModel):
    estimate: float | None
    low: float | None
    high: float | None


class EstimateOut(BaseModel):
    n: int
    interval: IntervalOut  # fixed-sample, descriptive
    sequence: IntervalOut  # anytime-valid


class DifferenceOut(BaseModel):
    fixed: IntervalOut
    sequence: IntervalOut


class VerdictOut(BaseModel):
    state: Literal["collecting", "not_enough_data", "winner", "no_difference", "guardrail_stop"]
    metric: str
    winner: str | None
    reason: str
    delta: float | None
    estimates: dict[str, EstimateOut]
    differences: dict[str, DifferenceOut]
    p_best: dict[str, float]
    needed_samples: dict[str, int | None]
    guardrail: dict[str, str] | None


class SeriesArm(BaseModel):
    n: int
    estimate: float | None
    low: float | None
    high: float | None


class SeriesPoint(BaseModel):
    at: float
    state: str
    arms: dict[str, SeriesArm]


class ExperimentDetail(BaseModel):
    experiment: ExperimentOut
    arms: list[ArmRow]
    verdict: VerdictOut | None
    series: list[SeriesPoint]


class PromoteResult(BaseModel):
    experiment: ExperimentOut
    arm: str
    strategy: str
    strategy_version: int | None  # subject ``routing.strategies``
    version: int | None  # subject ``experiments``


# --- endpoints ---


@router.get("")
async def list_experiments(request: Request) -> ExperimentList:
    """Every experiment (running, paused and stopped), newest first."""
    definitions = sorted(runtime_of(request).experiments.definitions.values(), key=lambda d: -d.created_at)
    return ExperimentList(data=[_out(d) for d in definitions])


@router.post("", status_code=201)
async def create_experiment(body: ExperimentCreate, request: Request) -> ExperimentChanged:
    """Start an experiment on a group: its arms split the group's units (team, user, session or
    request, the first present in ``unit`` order) by weight."""
    runtime = runtime_of(request)
    if not runtime.deployments.has_group(body.group):
        raise bad_request(f"unknown group {body.group!r}", param="group")
    now = time.time()
    call = current_call(request.scope)
    live = [arm for arm in body.arms if not arm.shadow]
    definition = ExperimentDefinition(
        id=f"exp_{secrets.token_hex(4)}",
        name=body.name,
        group=body.group,
        arms=tuple(ArmSpec(a.name, a.strategy, a.weight, a.shadow, dict(a.params)) for a in body.arms),
        control=body.control or (live[0].name if live else ""),
        unit=tuple(body.unit),
        primary=body.primary,
        guardrails=tuple(Guardrail(g.metric, g.margin, g.effect_size) for g in body.guardrails),
        alpha=body.alpha,
        effect_size=body.effect_size,
        power=body.power,
        min_samples_per_arm=body.min_samples_per_arm,
        weights_history=({a.name: a.weight for a in live},),
        created_at=now,
        updated_at=now,
        created_by=call.identity.actor if call is not None else None,
    )
    try:
        validate(definition, [arm.group for arm in body.arms])
    except InvalidExperiment as error:
        raise bad_request(error.message, param=error.param) from None
    for index, arm in enumerate(definition.arms):
        try:
            create_strategy(arm.strategy, runtime.models.deps)
        except ValueError as error:
            raise bad_request(str(error), param=f"arms[{index}].strategy") from None
    active = runtime.experiments.active_in(body.group)
    if active is not None:
        raise bad_request(
            f"group {body.group!r} already has an experiment ({active.id}, {active.state}); stop it first",
            param="group",
        )
    details = {"group": body.group, "arms": [a.to_dict() for a in definition.arms]}
    async with runtime.audit.action(request, "experiment.create", definition.id, details):
        version = await _publish(runtime, definition)
    return ExperimentChanged(experiment=_out(definition), version=version)


@router.get("/{experiment_id}")
async def get_experiment(experiment_id: str, request: Request) -> ExperimentDetail:
    """The definition, each arm's outcomes (cluster-wide), the verdict and the estimate's series."""
    experiments = runtime_of(request).experiments
    definition = _find(experiments, experiment_id)
    counters = await experiments.arm_counters(definition)
    shares = _shares(definition)
    rows = []
    for arm in definition.arms:
        table = counters[arm.name]
        feedback = summary_of(table["all"]).feedback
        rows.append(
            ArmRow(
                name=arm.name,
                strategy=arm.strategy,
                weight=arm.weight,
                shadow=arm.shadow,
                share=shares.get(arm.name, 0.0),
                outcomes=_outcomes(table["all"]),
                fallback=_outcomes(table["fallback"]),
                feedback=Moments(n=feedback.n, mean=statistics.finite_or_none(feedback.mean)),
                shadow_decisions=_shadow(table["shadow"]) if arm.shadow else None,
            )
        )
    verdict = await experiments.verdict(definition)
    return ExperimentDetail(
        experiment=_out(definition),
        arms=rows,
        verdict=VerdictOut(**verdict) if verdict is not None else None,
        series=[SeriesPoint(**point) for point in await experiments.series(definition.id)],
    )


@router.patch("/{experiment_id}")
async def change_experiment(experiment_id: str, body: ExperimentPatch, request: Request) -> ExperimentChanged:
    """New weights (moving as few units as possible) and/or a new state."""
    runtime = runtime_of(request)
    experiments = runtime.experiments
    definition = _find(experiments, experiment_id)
    now = time.time()
    changed = definition
    if body.weights:
        try:
            changed = changed.with_weights(body.weights, now)
        except InvalidExperiment as error:
            raise bad_request(error.message, param=error.param) from None
    if body.state is not None and body.state != definition.state:
        if body.state == "running":
            active = experiments.active_in(definition.group)
            if active is not None and active.id != definition.id:
                raise bad_request(
                    f"group {definition.group!r} already has an experiment ({active.id})", param="state"
                )
        reason = "stopped by an operator" if body.state == "stopped" else None
        changed = _replace(changed, state=body.state, updated_at=now, stopped_reason=reason)
    details = body.model_dump(exclude_none=True)
    async with runtime.audit.action(request, "experiment.change", experiment_id, details):
        version = await _publish(runtime, changed)
    return ExperimentChanged(experiment=_out(changed), version=version)


@router.delete("/{experiment_id}")
async def delete_experiment(experiment_id: str, request: Request) -> dict[str, Any]:
    """Remove the experiment and its counters (its feedback rows stay with their requests)."""
    runtime = runtime_of(request)
    _find(runtime.experiments, experiment_id)
    async with runtime.audit.action(request, "experiment.delete", experiment_id):
        try:
            version = await runtime.experiments.delete(experiment_id)
        except StateUnavailable as error:
            raise APIError(503, f"not changed anywhere: {error}", code="state_unavailable") from None
    return {"deleted": experiment_id, "version": version}


@router.post("/{experiment_id}/promote")
async def promote(experiment_id: str, body: PromoteRequest, request: Request) -> PromoteResult:
    """Make an arm's strategy the group's own (on every worker) and stop the experiment. Without
    ``arm``, the verdict's winner; 400 while there is none."""
    runtime = runtime_of(request)
    experiments = runtime.experiments
    definition = _find(experiments, experiment_id)
    name = body.arm
    if name is None:
        verdict = await experiments.verdict(definition)
        name = verdict.get("winner") if verdict is not None else None
        if name is None:
            state = verdict["state"] if verdict is not None else "unknown"
            raise bad_request(f"no winner yet (verdict: {state}); name the arm to promote", param="arm")
    arm = definition.arm(name)
    if arm is None:
        raise bad_request(f"experiment {experiment_id} has no arm {name!r}", param="arm")
    details = {"arm": arm.name, "strategy": arm.strategy, "group": definition.group}
    async with runtime.audit.action(request, "experiment.promote", experiment_id, details):
        try:
            strategy_version = await runtime.strategy.set(arm.strategy, definition.group)
            version = await experiments.stop_experiment(experiment_id, f"promoted {arm.name}", arm.name)
        except ValueError as error:
            raise bad_request(str(error), param="arm") from None
        except StateUnavailable as error:
            raise APIError(503, f"not changed everywhere: {error}", code="state_unavailable") from None
    return PromoteResult(
        experiment=_out(experiments.get(experiment_id)),
        arm=arm.name,
        strategy=arm.strategy,
        strategy_version=strategy_version,
        version=version,
    )


# --- helpers ---


async def _publish(runtime: Any, definition: ExperimentDefinition) -> int | None:
    try:
        version: int | None = await runtime.experiments.put(definition)
    except StateUnavailable as error:
        raise APIError(503, f"not changed anywhere: {error}", code="state_unavailable") from None
    return version


def _find(experiments: Any, experiment_id: str) -> ExperimentDefinition:
    try:
        definition: ExperimentDefinition = experiments.get(experiment_id)
    except UnknownExperiment:
        raise APIError(404, f"no experiment {experiment_id!r}", code="experiment_not_found") from None
    return definition


def _replace(definition: ExperimentDefinition, **changes: Any) -> ExperimentDefinition:
    from dataclasses import replace

    return replace(definition, **changes)


def _out(definition: ExperimentDefinition) -> ExperimentOut:
    data = definition.to_dict()
    data.pop("weights_history")
    return ExperimentOut(**data)


def _shares(definition: ExperimentDefinition) -> dict[str, float]:
    counts = definition.split().allocation.counts()
    return {name: count / BUCKETS for name, count in counts.items()}


def _outcomes(counters: dict[str, int]) -> Outcomes:
    summary = summary_of(counters)
    values = decode(counters)
    return Outcomes(
        requests=summary.requests,
        errors=summary.errors,
        error_rate=statistics.finite_or_none(summary.error_rate.value),
        errors_by_class=_prefixed(counters, "error:"),
        cost_usd=Moments(n=summary.cost.n, mean=statistics.finite_or_none(summary.cost.mean)),
        latency_ms_p50=_quantile(summary, 0.5),
        latency_ms_p95=_quantile(summary, LATENCY_QUANTILE),
        input_tokens=int(values.get("input_tokens", 0)),
        output_tokens=int(values.get("output_tokens", 0)),
        tiers=_prefixed(counters, "tier:"),
    )


def _shadow(counters: dict[str, int]) -> ShadowDecisions:
    return ShadowDecisions(
        decisions=int(counters.get("requests", 0)),
        agrees=int(counters.get("agrees", 0)),
        errors=int(counters.get("errors", 0)),
        tiers=_prefixed(counters, "tier:"),
    )


def _prefixed(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {name[len(prefix) :]: int(value) for name, value in counters.items() if name.startswith(prefix)}


def _quantile(summary: Any, q: float) -> float | None:
    if summary.latency.n == 0:
        return None
    value = statistics.quantile_of(summary.latency, q)
    return round(value, 3) if math.isfinite(value) else None
