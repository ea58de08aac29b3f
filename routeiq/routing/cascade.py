"""The ``llmrouter-cascade`` strategy's plan: per group, the steps that answer in turn, the verifier
that judges each answer, and the threshold below which the next step is asked.

This module holds what a cascade *is* (built once from ``routeiq.cascades`` when the runtime opens);
``routeiq.executors.cascade`` runs it. The strategy object itself only picks within the candidates it
is given: the cheapest deployment of the lowest tier. The dispatcher uses it for one step at a time
(the step's deployments are the candidates), for a dry run, and for requests the cascade does not
take (a bypassed stream, embeddings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from routeiq.routing.catalogue import CASCADE_STRATEGY, TIERS, strategy_spec
from routeiq.routing.deployments import Deployment, DeploymentTable
from routeiq.routing.strategy import RoutingChoice, RoutingContext

if TYPE_CHECKING:
    from routeiq.routing.verifiers import Verifier
    from routeiq.settings import Settings

RANK = {tier: rank for rank, tier in enumerate(TIERS)}
ARROW = "\u2192"  # between steps in ``x-routeiq-cascade``: ``budget:0.41→premium``


class CascadeStrategy:
    """Cheapest first within the lowest tier among the candidates."""

    name = CASCADE_STRATEGY
    description = strategy_spec(CASCADE_STRATEGY).description

    def choose(self, candidates: Sequence[Deployment], context: RoutingContext) -> RoutingChoice:
        def key(deployment: Deployment) -> tuple[int, float]:
            rank = RANK.get(deployment.tier, len(TIERS)) if deployment.tier else len(TIERS)
            cost = deployment.cost_per_token if deployment.cost_per_token is not None else float("inf")
            return rank, cost

        chosen = min(candidates, key=key)
        return RoutingChoice(
            chosen, self.name, "cascade: cheapest deployment of the lowest tier", chosen.tier
        )


@dataclass(frozen=True, slots=True)
class CascadeStep:
    """One step: its name as configured (a tier or a deployment id) and the deployments it may use."""

    label: str
    deployment_ids: frozenset[str]
    top_rank: int = len(TIERS)  # its highest tier's rank (an untiered deployment ranks above all)


def steps_from(steps: Sequence[CascadeStep], floor: str | None) -> list[CascadeStep]:
    """The steps a session may use: none wholly below its tier floor, and always the last."""
    lowest = RANK.get(floor, -1) if floor is not None else -1
    return [step for step in steps[:-1] if step.top_rank >= lowest] + list(steps[-1:])


@dataclass(frozen=True, slots=True)
class CascadePlan:
    group: str
    steps: tuple[CascadeStep, ...]
    verifier: Verifier
    threshold: float
    timeout_seconds: float
    buffers_streams: bool  # False: a streamed request is routed to the first step, no cascade


class CascadePlans:
    """Every group's plan, built once per runtime; the dispatcher asks only for a cascade group."""

    def __init__(self, plans: dict[str, CascadePlan]) -> None:
        self._plans = plans

    def get(self, group: str) -> CascadePlan | None:
        return self._plans.get(group)

    def __len__(self) -> int:
        return len(self._plans)


def build_plans(settings: Settings, deployments: DeploymentTable) -> CascadePlans | None:
    """The configured cascades (None when there are none: the dispatcher then checks nothing).

    A verifier that cannot be built (a missing or tampered artifact) raises ``ValueError`` naming
    its key, so startup stops instead of the first request failing."""
    if not settings.cascades:
        return None
    from routeiq.routing.verifiers import build_verifier

    hmac_key = settings.router_hmac_key.get_secret_value() if settings.router_hmac_key else None
    plans = {}
    for group, config in settings.cascades.items():
        members = deployments.group(group)
        steps = []
        for label in config.tiers:
            chosen = [d for d in members if d.id == label or (d.tier == label and label in RANK)]
            ranks = [RANK.get(d.tier, len(TIERS)) if d.tier else len(TIERS) for d in chosen]
            steps.append(CascadeStep(label, frozenset(d.id for d in chosen), max(ranks, default=len(TIERS))))
        verifier = build_verifier(config.verifier, f"cascades.{group}.verifier", hmac_key)
        plans[group] = CascadePlan(
            group,
            tuple(steps),
            verifier,
            config.threshold,
            config.verifier.timeout_seconds,
            config.streaming == "buffer",
        )
    return CascadePlans(plans)


def step_trail(steps: Sequence[tuple[str, str | None]]) -> str:
    """``budget:0.41→premium``: each step's label, with its verdict when it was judged."""
    return ARROW.join(label if verdict is None else f"{label}:{verdict}" for label, verdict in steps)


def header_value(trail: str) -> str:
    """The trail as Starlette must be handed it: header values go out as latin-1, and ``→`` must reach
    the client as its UTF-8 bytes (which httpx and browsers decode back to ``→``)."""
    return trail.encode("utf-8").decode("latin-1")
