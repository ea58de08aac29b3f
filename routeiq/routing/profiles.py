"""Tiers, profiles, and turning a difficulty score into the tier a request should get.

Deployments carry a tier in ``model_info.tier``. Tiers form a ladder; a profile says how to move
on it: ``auto`` follows the classifier, ``eco`` leans cheap, ``premium`` wants the top, ``free``
stays on free deployments, ``reasoning`` wants a reasoning model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from routeiq.routing.catalogue import TIERS
from routeiq.routing.deployments import Deployment, DeploymentTable
from routeiq.routing.signals import Signals
from routeiq.routing.strategy import Assessment

RANK = {tier: rank for rank, tier in enumerate(TIERS)}
DEFAULT_TIER = "standard"  # a deployment with no tier configured
PROFILES = ("auto", "eco", "premium", "free", "reasoning")
PROFILE_HEADER = "x-routeiq-profile"


@dataclass(frozen=True, slots=True)
class Target:
    """What a request's ``model`` names, resolved once for every layer: policy, quotas and routing."""

    model: str  # as the client sent it
    group: str | None  # the routing group that serves it; None: no such group (the API answers 404)
    profile: str | None  # the profile the model names (``premium``, ``Eco``...), None for a group


def resolve_target(model: str, deployments: DeploymentTable, profile_group: str) -> Target:
    """A group by its exact name; else a profile name, in any case (``premium``, ``AUTO``), served by
    ``profile_group``; else nothing. So ``premium``, ``eco`` and ``AUTO`` all count against ``auto``
    (with the default ``profile_group``) wherever a group is counted or judged. A model alias is
    resolved as the name it stands for, and stays the model as sent."""
    aliased = deployments.alias(model)
    if aliased is not None:
        target = resolve_target(aliased, deployments, profile_group)
        return Target(model, target.group, target.profile)
    if deployments.has_group(model):
        return Target(model, model, None)
    profile = model.lower()
    if profile in PROFILES:
        return Target(model, profile_group if deployments.has_group(profile_group) else None, profile)
    return Target(model, None, None)


def tier_of(deployment: Deployment) -> str:
    return deployment.tier if deployment.tier in RANK else DEFAULT_TIER


@dataclass(frozen=True, slots=True)
class TierPlan:
    tier: str  # what the request should get
    why: str


def wanted_tier(
    profile: str, assessment: Assessment, signals: Signals, session_floor: str | None
) -> TierPlan:
    """The tier for this request: the profile's reading of the verdict and signals, never below the
    tier its session already reached (a conversation that turned hard stays on the strong model).

    A clear "simple" verdict asks for budget, a clear "complex" one for premium, and a close call
    (which the scorer already resolved to complex, the safer side) for standard."""
    if profile == "free":
        return TierPlan("free", "profile free")
    if profile == "premium":
        plan = TierPlan("premium", "profile premium")
    elif profile == "reasoning" or (profile == "auto" and signals.reasoning):
        plan = TierPlan("reasoning", "profile reasoning" if profile == "reasoning" else "reasoning markers")
    else:
        tier = "premium" if assessment.complex else "budget"
        if assessment.complex and assessment.borderline:
            tier = "standard"
        verdict = "borderline" if assessment.borderline else "complex" if assessment.complex else "simple"
        why = f"{assessment.scorer}: {verdict} (p_strong {assessment.p_strong:.2f})"
        if signals.agentic and RANK[tier] < RANK["standard"]:
            tier, why = "standard", f"{why}, agentic request"
        if profile == "eco" and RANK[tier] > RANK["standard"]:
            tier, why = "standard", f"{why}, capped by profile eco"
        plan = TierPlan(tier, why)
    if session_floor in RANK and RANK[session_floor] > RANK[plan.tier]:
        return TierPlan(session_floor, f"{plan.why}; session already at {session_floor}")
    return plan


def nearest_tier(candidates: Sequence[Deployment], tier: str) -> list[Deployment]:
    """The candidates of ``tier``; else of the nearest tier above it; else the nearest below.
    Never empty while there are candidates: a request is served on something."""
    by_rank: dict[int, list[Deployment]] = {}
    for candidate in candidates:
        by_rank.setdefault(RANK[tier_of(candidate)], []).append(candidate)
    want = RANK[tier]
    above = sorted(rank for rank in by_rank if rank >= want)
    if above:
        return by_rank[above[0]]
    below = sorted(rank for rank in by_rank if rank < want)
    return by_rank[below[-1]] if below else []


def requested_profile(body: Mapping[str, Any], header: str | None, target: Target) -> str | None:
    """The profile asked for, by header, by ``extra_body={"routeiq": {"profile": ...}}``, or by
    asking for a profile name as the model. None: the caller did not choose."""
    extra = body.get("routeiq")
    from_body = extra.get("profile") if isinstance(extra, Mapping) else None
    if header:
        return header.strip().lower()
    if isinstance(from_body, str):
        return from_body.strip().lower()
    return target.profile
