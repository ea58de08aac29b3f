"""The policy engine: rule validation, matching, priorities, per-deployment verdicts, explanations and
reloads (a changed file, a refused file; the notice that reaches another worker through Redis is in
tests/services/test_policy_reload.py)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from routeiq.governance.call import current_call, new_call
from routeiq.governance.identity import Identity
from routeiq.governance.policy import (
    PolicyEngine,
    PolicyError,
    PolicyRequest,
    RuleSet,
    Target,
    candidate_targets,
    check_policy_file,
    normalise_route,
    parse_rules,
    requested_groups,
    resolve_policy_path,
)
from routeiq.middleware.policy import PolicyMiddleware
from routeiq.observability.metrics import Metrics
from routeiq.routing.deployments import DeploymentTable
from routeiq.runtime_handle import RuntimeHandle
from routeiq.settings import PolicySettings, Settings
from routeiq.state.changes import LiveChanges
from routeiq.state.memory import MemoryStateStore
from tests.support.eventually import eventually


def rules(text: str, default_action: str = "allow") -> RuleSet:
    return parse_rules(textwrap.dedent(text), "policy.yaml", default_action)


def request(**fields: Any) -> PolicyRequest:
    fields.setdefault("route", "/chat/completions")
    if "groups" in fields and isinstance(fields["groups"], str):
        fields["groups"] = (fields["groups"],)
    return PolicyRequest(**fields)


def target(deployment_id: str, model: str, requested: bool = True) -> Target:
    return Target(deployment_id, "g", (f"openai/{model}", model), requested)


def refusal(text: str) -> str:
    with pytest.raises(PolicyError) as caught:
        rules(text)
    return str(caught.value)


# --- matching ------------------------------------------------------------------------------------

INTERNS = """
rules:
  - name: block-interns-premium
    priority: 10
    action: deny
    reason: interns may not use premium
    match:
      team: [interns, "contractor-*"]
      group: [premium, "gpt-4o*"]
      route: ["/v1/chat/*"]
      method: [post]
"""


def test_every_given_field_must_match_and_lists_mean_any_of() -> None:
    engine = rules(INTERNS)
    hit = engine.judge(request(team="interns", groups="premium", method="POST"))
    assert not hit.decision.allowed
    assert hit.decision.rule == "block-interns-premium"
    assert hit.decision.reason == "interns may not use premium"
    assert not engine.judge(
        request(team="contractor-7", groups="gpt-4o-mini", method="POST")
    ).decision.allowed
    for other in (
        request(team="staff", groups="premium", method="POST"),  # team differs
        request(team="interns", groups="cheap", method="POST"),  # group differs
        request(team="interns", groups="premium", method="GET"),  # method differs
        request(team="interns", groups="premium", method="POST", route="/embeddings"),  # route differs
        request(groups="premium", method="POST"),  # no team at all (master key, anonymous)
    ):
        decision = engine.judge(other).decision
        assert decision.allowed and decision.rule == "default", other


def test_globs_are_case_sensitive_but_methods_are_not() -> None:
    engine = rules(
        """
        rules:
          - {name: r, action: deny, match: {user: ["ali*"], method: [Post]}}
        """
    )
    assert not engine.judge(request(user="alice", method="POST")).decision.allowed
    assert engine.judge(request(user="Alice", method="POST")).decision.allowed


def test_routes_match_with_and_without_the_v1_prefix() -> None:
    assert normalise_route("/v1/chat/completions") == "/chat/completions"
    assert normalise_route("/chat/completions") == "/chat/completions"
    assert normalise_route("/v1") == "/"
    assert normalise_route("/v10/x") == "/v10/x"
    for written in ("/v1/embeddings", "/embeddings"):
        engine = rules(f"rules: [{{name: r, action: deny, match: {{route: ['{written}']}}}}]")
        for called in ("/v1/embeddings", "/embeddings"):
            assert not engine.judge(request(route=normalise_route(called))).decision.allowed


def test_source_cidr_matches_ipv4_and_ipv6_and_never_an_unknown_address() -> None:
    engine = rules(
        """
        rules:
          - {name: internal, action: deny, match: {source_cidr: ["10.0.0.0/8", "fd00::/8"]}}
        """
    )
    assert not engine.judge(request(client_ip="10.20.30.40")).decision.allowed
    assert not engine.judge(request(client_ip="fd12::1")).decision.allowed
    assert engine.judge(request(client_ip="192.168.1.1")).decision.allowed
    assert engine.judge(request(client_ip=None)).decision.allowed
    assert engine.judge(request(client_ip="not-an-ip")).decision.allowed


def test_a_rule_without_match_applies_to_everything() -> None:
    engine = rules("rules: [{name: lockdown, action: deny, reason: maintenance}]")
    decision = engine.judge(request()).decision
    assert (decision.allowed, decision.rule, decision.reason) == (False, "lockdown", "maintenance")


# --- order and defaults --------------------------------------------------------------------------


def test_lowest_priority_first_and_ties_keep_file_order() -> None:
    engine = rules(
        """
        rules:
          - {name: deny-all, priority: 50, action: deny}
          - {name: allow-ops, priority: 10, action: allow, match: {team: [ops]}}
          - {name: tie-first, priority: 20, action: deny, match: {team: [dev]}}
          - {name: tie-second, priority: 20, action: allow, match: {team: [dev]}}
        """
    )
    assert [rule.name for rule in engine.rules] == ["allow-ops", "tie-first", "tie-second", "deny-all"]
    assert engine.judge(request(team="ops")).decision.rule == "allow-ops"
    assert engine.judge(request(team="ops")).decision.allowed
    assert engine.judge(request(team="dev")).decision.rule == "tie-first"
    assert engine.judge(request(team="qa")).decision.rule == "deny-all"


def test_the_default_action_decides_when_nothing_matches() -> None:
    text = "rules: [{name: allow-ops, action: allow, match: {team: [ops]}}]"
    closed = rules(text, default_action="deny")
    decision = closed.judge(request(team="dev")).decision
    assert not decision.allowed and decision.rule == "default" and "default action is deny" in decision.reason
    assert closed.judge(request(team="ops")).decision.allowed
    assert rules(text, default_action="allow").judge(request(team="dev")).decision.allowed
    assert not rules("rules: []", default_action="deny").judge(request()).decision.allowed
    assert rules("", default_action="allow").judge(request()).decision.allowed  # an empty file


# --- served models ---------------------------------------------------------------------------------

SERVED = """
rules:
  - {name: no-gpt4o, priority: 10, action: deny, reason: too dear, match: {served_model: ["openai/gpt-4o*"]}}
"""


def test_served_model_rules_exclude_deployments_and_deny_only_when_none_is_left() -> None:
    engine = rules(SERVED)
    mixed = engine.judge(request(groups="chat"), [target("big", "gpt-4o"), target("small", "llama-3")])
    assert mixed.decision.allowed
    assert mixed.excluded == {"big"}
    assert mixed.deployments["big"].rule == "no-gpt4o"
    every = engine.judge(request(groups="chat"), [target("big", "gpt-4o"), target("big2", "gpt-4o-mini")])
    assert not every.decision.allowed
    assert every.decision.rule == "no-gpt4o" and every.decision.reason == "too dear"
    # The bare upstream name matches too.
    bare = rules("rules: [{name: r, action: deny, match: {served_model: [llama-3]}}]")
    assert bare.judge(request(), [target("small", "llama-3"), target("big", "gpt-4o")]).excluded == {"small"}


def test_fallback_deployments_are_excluded_but_do_not_decide_the_request() -> None:
    engine = rules(SERVED)
    verdict = engine.judge(
        request(groups="chat"), [target("small", "llama-3"), target("fallback", "gpt-4o", requested=False)]
    )
    assert verdict.decision.allowed and verdict.excluded == {"fallback"}
    verdict = engine.judge(
        request(groups="chat"), [target("big", "gpt-4o"), target("fallback", "llama-3", requested=False)]
    )
    assert not verdict.decision.allowed and verdict.decision.rule == "no-gpt4o"


def test_served_model_rules_respect_priority_among_request_rules() -> None:
    engine = rules(
        """
        rules:
          - {name: ops-anything, priority: 1, action: allow, match: {team: [ops]}}
          - {name: no-gpt4o, priority: 10, action: deny, match: {served_model: ["*gpt-4o*"]}}
          - {name: deny-rest, priority: 20, action: deny}
        """
    )
    targets = [target("big", "gpt-4o"), target("small", "llama-3")]
    ops = engine.judge(request(team="ops"), targets)
    assert ops.decision.allowed and ops.excluded == set()
    dev = engine.judge(request(team="dev"), targets)
    assert not dev.decision.allowed
    assert dev.deployments["big"].rule == "no-gpt4o" and dev.deployments["small"].rule == "deny-rest"


def test_served_model_rules_never_match_requests_without_deployments() -> None:
    engine = rules(SERVED, default_action="allow")
    assert engine.judge(request(route="/models", method="GET")).decision.allowed


def test_groups_resolve_profiles_and_targets_include_fallbacks() -> None:
    def entry(group: str, model: str, deployment_id: str) -> dict[str, Any]:
        return {
            "model_name": group,
            "litellm_params": {"model": f"openai/{model}", "api_base": "http://127.0.0.1:9"},
            "model_info": {"id": deployment_id},
        }

    settings = Settings(
        model_list=[entry("auto", "m1", "a1"), entry("chat", "m2", "c1"), entry("backup", "m3", "b1")],
        router_settings={"fallbacks": [{"chat": ["backup"]}]},
    )
    table = DeploymentTable(settings.model_list)
    assert requested_groups("chat", table, settings) == ("chat",)
    assert requested_groups("eco", table, settings) == ("eco", "auto")  # a profile, served by auto
    assert requested_groups("nothing", table, settings) == ("nothing",)
    assert requested_groups(None, table, settings) == ()
    chat = candidate_targets(("chat",), table, settings)
    assert [(t.id, t.requested, t.models) for t in chat] == [
        ("c1", True, ("openai/m2", "m2")),
        ("b1", False, ("openai/m3", "m3")),
    ]
    assert [t.id for t in candidate_targets(("eco", "auto"), table, settings)] == ["a1"]
    assert candidate_targets(("nothing",), table, settings) == []
    engine = rules("rules: [{name: no-eco, action: deny, match: {group: [eco]}}]")
    assert not engine.judge(request(groups=("eco", "auto"))).decision.allowed
    engine = rules("rules: [{name: no-auto, action: deny, match: {group: [auto]}}]")
    assert not engine.judge(request(groups=("eco", "auto"))).decision.allowed  # served by auto


# --- explanations ----------------------------------------------------------------------------------


def test_explain_names_the_deciding_rule_and_why_the_others_did_not_match() -> None:
    engine = rules(
        """
        rules:
          - {name: office-only, priority: 1, action: deny, match: {source_cidr: ["10.0.0.0/8"]}}
          - {name: no-gpt4o, priority: 5, action: deny, match: {served_model: ["openai/gpt-4o"]}}
          - {name: interns, priority: 10, action: deny, reason: not today, match: {team: [interns]}}
          - {name: later, priority: 20, action: allow}
        """
    )
    explained = engine.explain(
        request(team="interns", client_ip="192.168.0.1"), [target("mini", "gpt-4o-mini")]
    )
    assert (
        explained["action"] == "deny"
        and explained["rule"] == "interns"
        and explained["reason"] == "not today"
    )
    by_name = {rule["name"]: rule for rule in explained["rules"]}
    assert by_name["office-only"] == {
        "name": "office-only",
        "priority": 1,
        "action": "deny",
        "matched": False,
        "mismatch": "source_cidr",
        "decided": False,
    }
    assert (
        by_name["no-gpt4o"]["mismatch"] == "served_model"
        and by_name["no-gpt4o"]["served_model_matches"] == []
    )
    assert by_name["interns"]["matched"] and by_name["interns"]["decided"]
    assert by_name["later"]["matched"] and not by_name["later"]["decided"]
    assert explained["deployments"] == {"mini": {"action": "deny", "rule": "interns"}}


# --- validation --------------------------------------------------------------------------------------


def test_an_unknown_key_names_the_rule_and_the_field() -> None:
    message = refusal("rules: [{name: ok, action: allow}, {name: typo, action: deny, match: {teams: [x]}}]")
    assert "policy.yaml" in message and "rule 'typo' (rules[1]): match.teams: unknown key" in message
    assert "rules[0]" not in message


def test_a_bad_cidr_names_the_rule_and_the_network() -> None:
    message = refusal("rules: [{name: net, action: deny, match: {source_cidr: ['10.0.0.0/33']}}]")
    assert "rule 'net' (rules[0]): match.source_cidr" in message and "'10.0.0.0/33'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [{name: x", "not valid YAML"),
        ("- just a list", "top level must be a mapping"),
        ("rulez: []", "rulez: unknown key"),
        (
            "rules: [{name: x, action: maybe}]",
            "rule 'x' (rules[0]): action: Input should be 'allow' or 'deny'",
        ),
        ("rules: [{action: deny}]", "rules[0]: name: Field required"),
        ("rules: [{name: x, action: deny, colour: red}]", "rule 'x' (rules[0]): colour: unknown key"),
        ("rules: [{name: x, action: deny, match: {team: []}}]", "match.team: an empty list matches nothing"),
        ("rules: [{name: x, action: deny, match: {route: [chat]}}]", "route 'chat' must start with '/'"),
        ("rules: [{name: x, action: deny, priority: high}]", "rule 'x' (rules[0]): priority"),
        ("rules: [{name: x, action: deny}, {name: x, action: allow}]", "rules[1]: duplicate rule name 'x'"),
    ],
)
def test_invalid_files_are_refused_with_a_clear_reason(text: str, expected: str) -> None:
    assert expected in refusal(text)


def test_single_strings_are_accepted_as_one_item_lists() -> None:
    engine = rules("rules: [{name: r, action: deny, match: {team: ops, source_cidr: 10.0.0.0/8}}]")
    assert engine.rules[0].match.team == ["ops"]
    assert not engine.judge(request(team="ops", client_ip="10.0.0.1")).decision.allowed


def test_relative_files_resolve_against_the_config_directory(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "gateway.yaml"
    assert resolve_policy_path("policy.yaml", config) == tmp_path / "conf" / "policy.yaml"
    assert resolve_policy_path("policy.yaml", None) == Path("policy.yaml")
    assert resolve_policy_path("/etc/p.yaml", config) == Path("/etc/p.yaml")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "policy.yaml").write_text("rules: [{name: r, action: deny}]")
    checked = check_policy_file(PolicySettings(file="policy.yaml"), config)
    assert checked is not None and [rule.name for rule in checked.rules] == ["r"]
    assert check_policy_file(PolicySettings(), config) is None
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        check_policy_file(PolicySettings(file="missing.yaml"), config)


# --- reloading -------------------------------------------------------------------------------------


def write(path: Path, text: str) -> None:
    """Write and move the mtime on, so a change is seen even within the clock's granularity."""
    path.write_text(textwrap.dedent(text))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


async def test_a_changed_file_is_picked_up_and_a_bad_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, "rules: [{name: first, action: deny}]")
    engine = PolicyEngine(
        PolicySettings(file=str(path), reload_interval_seconds=0), path, LiveChanges(MemoryStateStore(), "t")
    )
    assert engine.rules.rules[0].name == "first"
    before = engine.rules
    await engine.check()
    assert engine.rules is before  # nothing changed: nothing re-read
    write(path, "rules: [{name: second, action: deny}]")
    await engine.check()
    assert engine.rules.rules[0].name == "second"
    write(path, "rules: [{name: broken, action: maybe}]")
    await engine.check()  # refused and logged; the rules in force stay
    assert engine.rules.rules[0].name == "second"
    with pytest.raises(PolicyError, match="rule 'broken'"):
        await engine.reload()
    assert engine.rules.rules[0].name == "second"
    path.unlink()
    with pytest.raises(PolicyError, match="cannot read"):
        await engine.reload()
    write(path, "rules: [{name: third, action: allow}]")
    await engine.check()
    assert engine.rules.rules[0].name == "third"


async def test_the_poller_reloads_without_being_asked(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, "rules: [{name: first, action: deny}]")
    engine = PolicyEngine(
        PolicySettings(file=str(path), reload_interval_seconds=0.05),
        path,
        LiveChanges(MemoryStateStore(), "t"),
    )
    await engine.start()
    try:
        write(path, "rules: [{name: second, action: deny}]")

        def reloaded() -> None:
            assert engine.rules.rules[0].name == "second"

        await eventually(reloaded, timeout=5)
    finally:
        await engine.close()


# --- the middleware ------------------------------------------------------------------------------


class SetIdentity:
    """Stands where AuthMiddleware stands: gives the request its call (or, with None, none)."""

    def __init__(self, app: ASGIApp, identity: Identity | None) -> None:
        self.app = app
        self.identity = identity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.identity is not None:
            new_call(scope, self.identity)
        await self.app(scope, receive, send)


async def served(request: Request) -> JSONResponse:
    call = current_call(request.scope)
    body = call.body if call is not None and call.body_loaded else await request.json()
    excluded = sorted(call.excluded_deployments) if call is not None else []
    return JSONResponse({"model": body.get("model"), "excluded": excluded})


def governed_app(tmp_path: Path, text: str | None, identity: Identity | None, **policy: Any) -> Starlette:
    settings = Settings(
        model_list=[
            {
                "model_name": "mixed",
                "litellm_params": {"model": "openai/gpt-4o"},
                "model_info": {"id": "big"},
            },
            {
                "model_name": "mixed",
                "litellm_params": {"model": "openai/mini"},
                "model_info": {"id": "small"},
            },
        ],
        policy=PolicySettings(file=str(tmp_path / "policy.yaml") if text is not None else None, **policy),
    )
    engine = None
    if text is not None:
        write(tmp_path / "policy.yaml", text)
        engine = PolicyEngine(settings.policy, tmp_path / "policy.yaml", LiveChanges(MemoryStateStore(), "t"))
    handle = RuntimeHandle()
    app = Starlette(
        routes=[Route("/v1/chat/completions", served, methods=["POST"])],
        middleware=[Middleware(SetIdentity, identity=identity), Middleware(PolicyMiddleware, runtime=handle)],
    )
    runtime = SimpleNamespace(
        policy=engine, settings=settings, deployments=DeploymentTable(settings.model_list), metrics=Metrics()
    )
    handle.attach(runtime)  # only what the policy layer reads
    app.state.runtime = handle
    return app


async def post(app: Starlette, body: bytes | dict[str, Any]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        if isinstance(body, bytes):
            return await client.post("/v1/chat/completions", content=body)
        # A valid chat body (the body is validated where it is first read): the model varies.
        return await client.post("/v1/chat/completions", json={"messages": [HELLO], **body})


HELLO = {"role": "user", "content": "hello"}
INTERN = Identity("virtual_key", key_id="k1", team="interns")
NO_BIG = "rules: [{name: no-big, action: deny, match: {served_model: ['openai/gpt-4o']}}]"


async def test_the_middleware_reads_the_body_once_and_hands_exclusions_to_routing(tmp_path: Path) -> None:
    response = await post(governed_app(tmp_path, NO_BIG, INTERN), {"model": "mixed"})
    assert response.status_code == 200
    assert response.json() == {"model": "mixed", "excluded": ["big"]}


async def test_without_a_policy_file_nothing_is_read_or_judged(tmp_path: Path) -> None:
    response = await post(governed_app(tmp_path, None, INTERN), {"model": "mixed"})
    assert response.json() == {"model": "mixed", "excluded": []}


async def test_a_request_without_identity_is_refused_not_judged(tmp_path: Path) -> None:
    response = await post(governed_app(tmp_path, NO_BIG, None), {"model": "mixed"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"


async def test_a_body_that_is_not_json_gets_the_api_error(tmp_path: Path) -> None:
    response = await post(governed_app(tmp_path, NO_BIG, INTERN), b"{not json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("mode", ["closed", "open"])
async def test_an_evaluation_failure_follows_the_failure_mode(tmp_path: Path, mode: str) -> None:
    app = governed_app(tmp_path, NO_BIG, INTERN, failure_mode=mode)
    engine = app.state.runtime.get().policy

    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug in judging")

    engine.judge = broken
    response = await post(app, {"model": "mixed"})
    if mode == "closed":
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "policy_unavailable"
        assert response.headers["retry-after"] == "1"
    else:
        assert response.status_code == 200 and response.json()["excluded"] == []
    metrics = app.state.runtime.get().metrics.render().decode()
    assert f'routeiq_policy_failures_total{{failure_mode="{mode}"}} 1.0' in metrics
