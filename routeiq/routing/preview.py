"""The dry-run decision behind ``POST /v1/routeiq/route``: everything but the call."""

from __future__ import annotations

from typing import Any

from routeiq.errors import NoDeploymentAvailable, NoDeploymentCanServe
from routeiq.routing.constraints import NoCapableDeployment
from routeiq.routing.llmrouter import judge_off_loop
from routeiq.routing.profiles import tier_of
from routeiq.routing.strategy import NoHealthyDeployment, RoutingContext


async def preview(runtime: Any, context: RoutingContext) -> dict[str, Any]:
    picker = runtime.picker
    if context.session_id is not None:
        context.session_floor = await runtime.dispatcher.session_floor(context.session_id)
    try:
        candidates = await picker.candidates(context.group, context)
    except NoHealthyDeployment as error:
        raise NoDeploymentAvailable(str(error), error.retry_after) from None
    except NoCapableDeployment as error:
        raise NoDeploymentCanServe(f"no deployment can take this request: {error}") from None
    strategy = picker.strategy_for(context.group)
    await judge_off_loop(strategy, candidates, context)
    decision = strategy.choose(candidates, context)
    assessment = decision.assessment
    return {
        "group": context.group,
        "profile": context.profile,
        "strategy": decision.strategy,
        "reason": decision.reason,
        "signals": context.signals.names(),
        "session_floor": context.session_floor,
        "assessment": None
        if assessment is None
        else {
            "p_strong": assessment.p_strong,
            "category": assessment.category,
            "confidence": assessment.confidence,
            "scorer": assessment.scorer,
        },
        "decision": {
            "deployment_id": decision.deployment.id,
            "served_model": decision.deployment.upstream_model,
            "tier": decision.tier or decision.deployment.tier,
        },
        "candidates": [
            {
                "deployment_id": candidate.id,
                "served_model": candidate.upstream_model,
                "tier": tier_of(candidate),
                "weight": candidate.weight,
                "cost_per_token": candidate.cost_per_token,
                "chosen": candidate.id == decision.deployment.id,
            }
            for candidate in candidates
        ],
    }
