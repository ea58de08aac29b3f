"""A request's row in the decision store, built by the request ledger from what was recorded while
the request ran: the ``RequestTrace`` the dispatcher filled in (group, strategy, the pick and the
candidates it was chosen from, every failed attempt, fallbacks), the governed call (who asked, the
usage and cost charged) and the response's status. Nothing is recomputed after the fact.

Unlike the decision log line, the row names who asked (key, team, user): it lives in the store, is
read under the admin key, and is deleted after ``decision_retention_days``. Prompt text goes in
only with ``log_prompts`` on, cut to ``PROMPT_MAX_CHARS``.
"""

from __future__ import annotations

from routeiq.governance.call import GovernedCall
from routeiq.routing.decision import RequestTrace
from routeiq.store.records import DecisionRecord

PROMPT_MAX_CHARS = 4_000

# The ledger's outcome words, in the four the admin API filters on.
OUTCOME_OF = {
    "ok": "served",
    "rejected": "refused",
    "shed": "shed",
    "failed": "failed",
    "interrupted": "failed",  # a stream that broke off after its first byte
}


def api_outcome(ledger_outcome: str, trace: RequestTrace) -> str:
    """served, failed, refused or shed; a client that left is served if a deployment answered."""
    if ledger_outcome == "client_disconnected":
        return "served" if trace.served else "failed"
    return OUTCOME_OF.get(ledger_outcome, "failed")


def decision_record(
    trace: RequestTrace,
    call: GovernedCall | None,
    *,
    request_id: str,
    route: str,
    started_at: float,
    latency_ms: float,
    status: int,
    outcome: str,
    error_code: str | None,
    log_prompts: bool,
) -> DecisionRecord:
    """``outcome`` is the ledger's (``request_outcome``); ``started_at`` UNIX seconds."""
    decision, context = trace.decision, trace.context
    served = decision.deployment if decision is not None and trace.served else None
    scores = decision.scores if decision is not None and decision.scores is not None else {}
    candidates = [
        {
            "deployment": candidate.id,
            "model": candidate.upstream_model,
            "tier": candidate.tier,
            "score": scores.get(candidate.id),
            "chosen": decision is not None and candidate.id == decision.deployment.id,
        }
        for candidate in (context.candidates if context is not None else ())
    ]
    attempted = [
        {
            "deployment": failure.deployment,
            "group": failure.group,
            "status": failure.status,
            "error_code": failure.code,
        }
        for failure in trace.failures
    ]
    attempted += [  # answers a cascade turned down (it says which in ``reason``)
        {"deployment": deployment_id, "group": trace.group, "status": 200, "error_code": "cascade_escalated"}
        for deployment_id in trace.escalated
    ]
    if served is not None:
        attempted.append(
            {"deployment": served.id, "group": served.group, "status": status, "error_code": None}
        )
    assessment = decision.assessment if decision is not None else None
    usage = (call.usage or {}) if call is not None and call.served is not None else {}
    identity = call.identity if call is not None else None
    prompt = None
    if log_prompts and context is not None:
        prompt = context.signals.text[:PROMPT_MAX_CHARS]
    return DecisionRecord(
        request_id=request_id,
        time=started_at,
        route=route,
        status=status,
        outcome=api_outcome(outcome, trace),
        outcome_detail=outcome,
        group=served.group if served is not None else trace.group,
        requested_group=trace.group,
        strategy=decision.strategy if decision is not None else trace.strategy,
        profile=context.profile if context is not None else None,
        tier=(decision.tier or decision.deployment.tier) if decision is not None else None,
        served_model=served.upstream_model if served is not None else None,
        deployment=served.id if served is not None else None,
        reason=decision.reason if decision is not None else None,
        candidates=candidates,
        fallbacks=list(trace.fallbacks_tried),
        attempted=attempted,
        skipped=dict(trace.skipped),
        attempts=len(attempted),
        error_code=error_code,
        latency_ms=round(latency_ms, 3),
        routing_ms=round(trace.routing_seconds * 1000, 3) if decision is not None else None,
        routing_overhead_ms=round(trace.overhead_ms, 3) if trace.overhead_ms is not None else None,
        input_tokens=_tokens(usage, "prompt_tokens"),
        output_tokens=_tokens(usage, "completion_tokens"),
        cost_usd=(call.cost_usd or 0.0) if call is not None and call.served is not None else 0.0,
        key_id=identity.key_id if identity is not None else None,
        team=identity.team if identity is not None else None,
        user=identity.user if identity is not None else None,
        assessment={
            "category": assessment.category,
            "p_strong": round(assessment.p_strong, 4),
            "confidence": round(assessment.confidence, 4),
            "scorer": assessment.scorer,
        }
        if assessment is not None
        else None,
        experiment=trace.experiment,
        arm=trace.arm,
        shadow=trace.shadow,
        prompt=prompt,
    )


def _tokens(usage: dict[str, object], field: str) -> int:
    value = usage.get(field)
    return int(value) if isinstance(value, int | float) else 0
