"""What a routing decision tells the world: ``x-routeiq-*`` headers and the decision event.

The event is one structured log line per model request (served, failed or shed), free of prompt
text and of who asked (no key, no user, no session id), so it can be shipped and kept without
becoming a PII store. ``RequestTrace`` collects what routing did as it happens; the request ledger
(``routeiq.observability.ledger``) turns it into that one line when the response has been sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from routeiq.routing.strategy import RoutingChoice, RoutingContext


@dataclass(slots=True)
class FailedAttempt:
    """One deployment that did not answer, and its failure class (the error code clients see)."""

    deployment: str
    group: str
    code: str
    status: int
    message: str  # RouteIQ's words, with the provider's own message; never the prompt
    retry_after: float | None = None  # what a rate-limited upstream asked for


@dataclass(slots=True)
class RequestTrace:
    """What routing did for one request, filled in by the dispatcher as it happens."""

    group: str | None = None  # the routing group asked for (a profile already resolved)
    strategy: str | None = None  # the requested group's strategy
    context: RoutingContext | None = None
    decision: RoutingChoice | None = None  # the pick that answered, or the last one tried
    served: bool = False
    failures: list[FailedAttempt] = field(default_factory=list)
    fallbacks_tried: list[str] = field(default_factory=list)  # fallback groups an attempt was made in
    skipped: dict[str, str] = field(default_factory=dict)  # group -> why nothing was tried there
    routing_seconds: float = 0.0
    overhead_ms: float | None = None  # the gateway's own time before the answer (x-routeiq-overhead-ms)
    streaming: bool = False
    stream_finished: bool = False  # the stream reached its end (an error event included)
    stream_error: str | None = None  # the error code a stream that broke off ended with
    experiment: str | None = None  # the experiment the request was enrolled in, and its arm
    arm: str | None = None
    shadow: dict[str, dict[str, object]] | None = None  # shadow arm -> the decision it made
    cascade: str | None = None  # a cascade's steps and verdicts (``x-routeiq-cascade``)
    escalated: list[str] = field(default_factory=list)  # deployments whose answers a cascade turned down

    def attempted(self) -> list[str]:
        """Every deployment tried, in order (the one that answered last)."""
        tried = [failure.deployment for failure in self.failures]
        if self.served and self.decision is not None:
            tried.append(self.decision.deployment.id)
        return tried


def decision_headers(
    decision: RoutingChoice, context: RoutingContext, failed: list[str], overhead_ms: float
) -> dict[str, str]:
    deployment = decision.deployment
    headers = {
        "x-routeiq-served-model": deployment.upstream_model,
        "x-routeiq-deployment-id": deployment.id,
        "x-routeiq-group": deployment.group,
        "x-routeiq-strategy": decision.strategy,
        "x-routeiq-reason": decision.reason,
        "x-routeiq-attempted-deployments": ",".join([*failed, deployment.id]),
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


def failure_headers(trace: RequestTrace) -> dict[str, str]:
    """The same ``x-routeiq-*`` story for a request nothing answered: which group and strategy,
    which deployments were tried, and which fallback groups ran."""
    headers = {"x-routeiq-attempted-fallbacks": str(len(trace.failures))}
    if trace.group is not None:
        headers["x-routeiq-group"] = trace.group
    if trace.strategy is not None:
        headers["x-routeiq-strategy"] = trace.strategy
    if trace.failures:
        tried = ",".join(failure.deployment for failure in trace.failures)
        headers["x-routeiq-attempted-deployments"] = tried
        headers["x-routeiq-failed-deployments"] = tried
    headers["x-routeiq-fallback-groups"] = ",".join(trace.fallbacks_tried) or "none"
    if trace.context is not None:
        headers["x-routeiq-profile"] = trace.context.profile
    headers.update(experiment_headers(trace))
    return headers


def experiment_headers(trace: RequestTrace) -> dict[str, str]:
    """``x-routeiq-experiment`` / ``x-routeiq-arm`` for a request enrolled in an experiment."""
    if trace.experiment is None or trace.arm is None:
        return {}
    return {"x-routeiq-experiment": trace.experiment, "x-routeiq-arm": trace.arm}


def failure_message(trace: RequestTrace, configured_fallbacks: list[str]) -> str:
    """Why nothing answered, in RouteIQ's words: every attempt with its failure class, then what
    became of the fallback groups."""
    group = trace.group or "?"
    if trace.failures:
        attempts = "; ".join(f"{failure.message} [{failure.code}]" for failure in trace.failures)
        parts = [f"no deployment answered for {group!r}. Tried: {attempts}."]
    else:
        parts = [f"no deployment of {group!r} could be tried."]
    parts += [f"{name!r}: {why}." for name, why in trace.skipped.items()]
    if trace.fallbacks_tried:
        parts.append(f"Fallbacks ran: {', '.join(trace.fallbacks_tried)}.")
    elif configured_fallbacks:
        parts.append("No fallback group could be tried.")
    else:
        parts.append(f"No fallback group is configured for {group!r}.")
    return " ".join(parts)


def decision_event(
    trace: RequestTrace, request_id: str, status: int, outcome: str, error_code: str | None
) -> dict[str, object]:
    """One request's record: its routing (when it got that far) and how it ended."""
    decision, context = trace.decision, trace.context
    assessment = decision.assessment if decision is not None else None
    deployment = decision.deployment if decision is not None else None
    return {
        "event": "routing_decision",
        "request_id": request_id,
        "outcome": outcome,
        "status": status,
        "error_code": error_code,
        "group": deployment.group if deployment is not None and trace.served else trace.group,
        "requested_group": trace.group,
        "deployment": deployment.id if deployment is not None and trace.served else None,
        "served_model": deployment.upstream_model if deployment is not None and trace.served else None,
        "strategy": decision.strategy if decision is not None else trace.strategy,
        "profile": context.profile if context is not None else None,
        "tier": (decision.tier or deployment.tier)
        if decision is not None and deployment is not None
        else None,
        "category": assessment.category if assessment else None,
        "p_strong": round(assessment.p_strong, 4) if assessment else None,
        "confidence": round(assessment.confidence, 4) if assessment else None,
        "scorer": assessment.scorer if assessment else None,
        "signals": context.signals.names() if context is not None else [],
        "session_floor": context.session_floor if context is not None else None,
        "attempted_deployments": trace.attempted(),
        "failed_deployments": [failure.deployment for failure in trace.failures],
        "failure_classes": [failure.code for failure in trace.failures],
        "fallback_groups": trace.fallbacks_tried,
        "routing_ms": round(trace.routing_seconds * 1000, 3),
        "reason": decision.reason if decision is not None else None,
        "cascade": trace.cascade,
        "escalated_deployments": trace.escalated,
    }
