"""A request's decision record is what the ledger's trace and the governed call recorded."""

from __future__ import annotations

from routeiq.governance.call import GovernedCall, Served
from routeiq.governance.identity import Identity
from routeiq.observability.decision_records import PROMPT_MAX_CHARS, decision_record
from routeiq.routing.decision import FailedAttempt, RequestTrace
from routeiq.routing.deployments import DeploymentTable
from routeiq.routing.strategy import RoutingChoice, RoutingContext
from routeiq.settings import DeploymentConfig

PROMPT = "tell me a secret " * 400


def table() -> DeploymentTable:
    entries = [
        {"model_name": group, "litellm_params": {"model": f"openai/{name}"}, "model_info": {"id": name}}
        for group, name in (("primary", "down"), ("backup", "up-a"), ("backup", "up-b"))
    ]
    return DeploymentTable([DeploymentConfig.model_validate(entry) for entry in entries])


def served_after_a_fallback() -> tuple[RequestTrace, GovernedCall]:
    deployments = table()
    up_a, up_b = deployments.group("backup")
    context = RoutingContext("req-1", "primary", {"messages": [{"role": "user", "content": PROMPT}]})
    context.candidates = [up_a, up_b]
    trace = RequestTrace(group="primary", strategy="cost-based-routing", context=context, served=True)
    trace.decision = RoutingChoice(up_b, "cost-based-routing", "cheapest", scores={"up-a": 2.0, "up-b": 1.0})
    trace.failures.append(FailedAttempt("down", "primary", "upstream_server_error", 500, "boom"))
    trace.fallbacks_tried.append("backup")
    trace.overhead_ms = 1.23456
    call = GovernedCall(
        Identity("virtual_key", key_id="k1", team="search", user="ana"),
        "req-1",
        "POST",
        "/v1/chat/completions",
        None,
        True,
    )
    call.served = Served("up-b", "backup", "up-b")
    call.usage = {"prompt_tokens": 7, "completion_tokens": 3}
    call.cost_usd = 0.5
    return trace, call


def record(log_prompts: bool, outcome: str = "ok", status: int = 200):  # type: ignore[no-untyped-def]
    trace, call = served_after_a_fallback()
    return decision_record(
        trace,
        call,
        request_id="req-1",
        route="/v1/chat/completions",
        started_at=1000.0,
        latency_ms=42.0,
        status=status,
        outcome=outcome,
        error_code=None,
        log_prompts=log_prompts,
    )


def test_a_fallback_request_records_its_attempts_candidates_and_charges() -> None:
    written = record(log_prompts=False)
    assert (written.group, written.requested_group, written.deployment) == ("backup", "primary", "up-b")
    assert written.fallbacks == ["backup"] and written.attempts == 2
    assert [attempt["deployment"] for attempt in written.attempted] == ["down", "up-b"]
    assert written.attempted[0]["error_code"] == "upstream_server_error"
    assert [(c["deployment"], c["score"], c["chosen"]) for c in written.candidates] == [
        ("up-a", 2.0, False),
        ("up-b", 1.0, True),
    ]
    assert (written.outcome, written.status, written.reason) == ("served", 200, "cheapest")
    assert (written.input_tokens, written.output_tokens, written.cost_usd) == (7, 3, 0.5)
    assert (written.key_id, written.team, written.user) == ("k1", "search", "ana")
    assert written.routing_overhead_ms == 1.235 and written.latency_ms == 42.0
    assert written.experiment is None and written.arm is None


def test_the_prompt_is_kept_only_with_log_prompts_and_bounded() -> None:
    assert record(log_prompts=False).prompt is None
    kept = record(log_prompts=True).prompt
    assert kept is not None and len(kept) == PROMPT_MAX_CHARS and PROMPT.startswith(kept)


def test_outcomes_map_onto_the_four_the_api_filters_on() -> None:
    assert record(False, "interrupted").outcome == "failed"
    assert record(False, "client_disconnected").outcome == "served"  # a deployment answered
    assert record(False, "shed", 503).outcome == "shed"
    refused = decision_record(
        RequestTrace(),
        None,
        request_id="r",
        route="/v1/chat/completions",
        started_at=1.0,
        latency_ms=1.0,
        status=401,
        outcome="rejected",
        error_code="invalid_api_key",
        log_prompts=True,
    )
    assert (refused.outcome, refused.attempts, refused.candidates, refused.prompt) == ("refused", 0, [], None)
