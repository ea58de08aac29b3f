"""What a routing decision tells the world: ``x-routeiq-*`` headers and the decision event.

The event is one structured log line per routed request, free of prompt text and of who asked
(no key, no user, no session id), so it can be shipped and kept without becoming a PII store.
"""

from __future__ import annotations

from routeiq.routing.strategy import Decision, RoutingContext


def decision_headers(
    decision: Decision, context: RoutingContext, failed: list[str], overhead_ms: float
) -> dict[str, str]:
    deployment = decision.deployment
    headers = {
        "x-routeiq-served-model": deployment.upstream_model,
        "x-routeiq-deployment-id": deployment.id,
        "x-routeiq-group": deployment.group,
        "x-routeiq-strategy": decision.strategy,
        "x-routeiq-reason": decision.reason,
        "x-routeiq-attempted-fallbacks": str(len(failed)),
        "x-routeiq-overhead-ms": f"{overhead_ms:.2f}",
    }
    if deployment.tier:
        headers["x-routeiq-tier"] = deployment.tier
    if decision.assessment is not None:
        assessment = decision.assessment
        headers["x-routeiq-decision"] = f"{decision.tier}/{assessment.category}"
        headers["x-routeiq-confidence"] = f"{assessment.confidence:.2f}"
        headers["x-routeiq-p-strong"] = f"{assessment.p_strong:.3f}"
        headers["x-routeiq-profile"] = context.profile
    if failed:
        headers["x-routeiq-failed-deployments"] = ",".join(failed)
    return headers


def decision_event(
    decision: Decision, context: RoutingContext, failed: list[str], outcome: str, routing_seconds: float
) -> dict[str, object]:
    assessment = decision.assessment
    return {
        "event": "routing_decision",
        "request_id": context.request_id,
        "group": decision.deployment.group,
        "deployment": decision.deployment.id,
        "served_model": decision.deployment.upstream_model,
        "strategy": decision.strategy,
        "profile": context.profile,
        "tier": decision.tier or decision.deployment.tier,
        "category": assessment.category if assessment else None,
        "p_strong": round(assessment.p_strong, 4) if assessment else None,
        "confidence": round(assessment.confidence, 4) if assessment else None,
        "scorer": assessment.scorer if assessment else None,
        "signals": context.signals.names(),
        "session_floor": context.session_floor,
        "failed_deployments": failed,
        "outcome": outcome,
        "routing_ms": round(routing_seconds * 1000, 3),
        "reason": decision.reason,
    }
