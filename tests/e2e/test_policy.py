"""The policy engine through the real server: denials, identity from the key only, served-model
exclusions, explanations, reloads (file change, admin call, across replicas) and check-config."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.support.eventually import eventually_sync
from tests.support.gateway import COMMAND_TIMEOUT_SECONDS, Gateway, deployment
from tests.support.mock_upstream import MockUpstream

MASTER_KEY = "sk-policy-master"
ADMIN_KEY = "sk-policy-admin"
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
REDIS_URL = "redis://127.0.0.1:6379/0"
RELOAD_WAIT_SECONDS = 15.0

RULES = """
rules:
  - name: block-interns-premium
    priority: 10
    action: deny
    reason: interns may not use premium
    match: {team: [interns], group: [premium]}
  - name: no-gpt4o
    priority: 20
    action: deny
    reason: gpt-4o is off limits
    match: {served_model: ["openai/gpt-4o*"]}
  - name: loopback-no-embeddings
    priority: 30
    action: deny
    match: {source_cidr: ["127.0.0.0/8"], route: ["/v1/embeddings"]}
"""


def chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}]}


def model_list(api_base: str) -> list[dict[str, Any]]:
    return [
        deployment("premium", "mock-premium", api_base, id="premium-1"),
        deployment("cheap", "mock-cheap", api_base, id="cheap-1"),
        deployment("mixed", "gpt-4o-mock", api_base, id="mixed-big"),
        deployment("mixed", "mock-small", api_base, id="mixed-small"),
        deployment("only4o", "gpt-4o-mini-mock", api_base, id="only4o-1"),
        deployment("embed", "mock-embed", api_base, id="embed-1"),
    ]


def write_rules(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text))


def wait_until(check: Callable[[], bool], what: str, timeout: float = RELOAD_WAIT_SECONDS) -> None:
    def seen() -> None:
        assert check(), f"{what} not seen after {timeout}s"

    eventually_sync(seen, timeout=timeout, interval=0.1)


@dataclass
class Governed:
    gateway: Gateway
    upstream: MockUpstream
    policy_path: Path

    def post(self, path: str, body: dict[str, Any], key: str = MASTER_KEY, **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.url}{path}",
            json=body,
            headers={"authorization": f"Bearer {key}", **headers},
            timeout=20,
        )

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.gateway.url}{path}", headers=ADMIN, timeout=20, **kwargs)

    def key_for(self, **fields: str) -> str:
        response = self.admin("POST", "/admin/keys", json=fields)
        assert response.status_code == 201, response.text
        return str(response.json()["key"])


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Governed]:
    tmp = tmp_path_factory.mktemp("policy")
    policy_path = tmp / "policy.yaml"
    write_rules(policy_path, RULES)
    env = {"ROUTEIQ_MASTER_KEY": MASTER_KEY, "ROUTEIQ_ADMIN_KEYS": ADMIN_KEY}
    with MockUpstream() as upstream:
        config = {
            "model_list": model_list(upstream.base_url),
            # Relative: found next to the config file, which the gateway writes into tmp.
            "routeiq": {"policy": {"file": "policy.yaml", "reload_interval_seconds": 0.2}},
        }
        with Gateway(config, tmp, env) as gateway:
            yield Governed(gateway, upstream, policy_path)


def assert_denied(response: httpx.Response, rule: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "policy_denied"
    assert error["type"] == "permission_error"
    assert rule in error["message"]
    assert response.headers["x-routeiq-policy-rule"] == rule
    assert response.headers["x-request-id"]


# --- denials and identity ------------------------------------------------------------------------


def test_a_team_rule_denies_with_403_naming_the_rule(governed: Governed) -> None:
    intern = governed.key_for(team="interns", user="ivy")
    for path in ("/v1/chat/completions", "/chat/completions"):
        response = governed.post(path, chat("premium"), key=intern, **{"x-request-id": "req-policy-1"})
        assert_denied(response, "block-interns-premium")
        assert "interns may not use premium" in response.json()["error"]["message"]
        assert response.headers["x-request-id"] == "req-policy-1"
    assert governed.post("/v1/chat/completions", chat("cheap"), key=intern).status_code == 200
    staff = governed.key_for(team="staff")
    assert governed.post("/v1/chat/completions", chat("premium"), key=staff).status_code == 200
    metrics = httpx.get(f"{governed.gateway.url}/metrics", headers=MASTER).text
    assert 'routeiq_policy_denials_total{rule="block-interns-premium"}' in metrics


def test_the_sdk_sees_a_permission_error_with_the_policy_code(governed: Governed) -> None:
    intern = governed.key_for(team="interns")
    client = openai.OpenAI(base_url=f"{governed.gateway.url}/v1", api_key=intern, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(**chat("premium"))
    assert denied.value.code == "policy_denied"
    assert "block-interns-premium" in denied.value.message


def test_client_headers_and_body_fields_cannot_change_the_identity(governed: Governed) -> None:
    intern = governed.key_for(team="interns")
    spoofed = {"x-team-id": "staff", "x-user-id": "boss", "x-routeiq-team": "staff", "x-key-id": "other"}
    body = {**chat("premium"), "user": "boss", "metadata": {"team": "staff"}}
    assert_denied(governed.post("/v1/chat/completions", body, key=intern, **spoofed), "block-interns-premium")
    # And the other way round: claiming to be an intern does not get the master key denied.
    master = governed.post("/v1/chat/completions", chat("premium"), **{"x-team-id": "interns"})
    assert master.status_code == 200


def test_source_cidr_and_route_rules(governed: Governed) -> None:
    body = {"model": "embed", "input": "hello"}
    assert_denied(governed.post("/v1/embeddings", body), "loopback-no-embeddings")
    assert_denied(governed.post("/embeddings", body), "loopback-no-embeddings")
    explained = governed.admin(
        "POST",
        "/admin/policies/test",
        json={"model": "embed", "route": "/embeddings", "source_ip": "10.1.2.3"},
    ).json()
    assert explained["action"] == "allow" and explained["rule"] == "default"


def test_policy_does_not_govern_health_or_admin(governed: Governed) -> None:
    assert httpx.get(f"{governed.gateway.url}/_health/ready").status_code == 200
    assert governed.admin("GET", "/admin/policies").status_code == 200


# --- served models -----------------------------------------------------------------------------------


def test_a_served_model_rule_removes_deployments_from_routing(governed: Governed) -> None:
    governed.upstream.clear()
    for _ in range(8):
        response = governed.post("/v1/chat/completions", chat("mixed"))
        assert response.status_code == 200, response.text
        assert response.headers["x-routeiq-served-model"] == "mock-small"
        assert response.headers["x-routeiq-deployment-id"] == "mixed-small"
    upstream_models = {request["body"]["model"] for request in governed.upstream.requests}
    assert upstream_models == {"mock-small"}


def test_a_group_whose_every_deployment_is_denied_is_refused_at_once(governed: Governed) -> None:
    governed.upstream.clear()
    assert_denied(governed.post("/v1/chat/completions", chat("only4o")), "no-gpt4o")
    assert "gpt-4o is off limits" in governed.post("/v1/chat/completions", chat("only4o")).text
    assert governed.upstream.requests == []


# --- explanations --------------------------------------------------------------------------------


def test_the_test_endpoint_explains_which_rule_a_request_hits(governed: Governed) -> None:
    response = governed.admin("POST", "/admin/policies/test", json={"team": "interns", "model": "premium"})
    assert response.status_code == 200, response.text
    explained = response.json()
    assert explained["action"] == "deny"
    assert explained["rule"] == "block-interns-premium"
    assert explained["reason"] == "interns may not use premium"
    first = explained["rules"][0]
    assert first["name"] == "block-interns-premium" and first["matched"] and first["decided"]

    mixed = governed.admin("POST", "/admin/policies/test", json={"team": "staff", "model": "mixed"}).json()
    assert mixed["action"] == "allow"
    assert mixed["excluded_deployments"] == ["mixed-big"]
    by_name = {rule["name"]: rule for rule in mixed["rules"]}
    assert by_name["block-interns-premium"]["mismatch"] == "team"
    assert by_name["no-gpt4o"]["served_model_matches"] == ["mixed-big"]

    bad = governed.admin("POST", "/admin/policies/test", json={"source_ip": "not-an-ip"})
    assert bad.status_code == 400 and "source_ip" in bad.json()["error"]["message"]
    unknown = governed.admin("POST", "/admin/policies/test", json={"teem": "x"})
    assert unknown.status_code == 400


def test_the_rules_in_force_are_listed_in_order(governed: Governed) -> None:
    shown = governed.admin("GET", "/admin/policies").json()
    assert shown["enabled"] and shown["file"] == str(governed.policy_path)
    assert [rule["name"] for rule in shown["rules"]] == [
        "block-interns-premium",
        "no-gpt4o",
        "loopback-no-embeddings",
    ]
    assert shown["default_action"] == "allow" and len(shown["sha256"]) == 64


# --- reloading --------------------------------------------------------------------------------------


def test_a_changed_file_is_picked_up_without_restart(governed: Governed) -> None:
    staff = governed.key_for(team="staff")
    assert governed.post("/v1/chat/completions", chat("cheap"), key=staff).status_code == 200
    try:
        write_rules(
            governed.policy_path,
            RULES
            + "  - {name: staff-no-cheap, priority: 5, action: deny, match: {team: staff, group: cheap}}\n",
        )
        wait_until(
            lambda: governed.post("/v1/chat/completions", chat("cheap"), key=staff).status_code == 403,
            "the new rule",
        )
        assert_denied(governed.post("/v1/chat/completions", chat("cheap"), key=staff), "staff-no-cheap")
        # A broken edit is refused: the rules in force keep serving.
        write_rules(
            governed.policy_path, "rules: [{name: broken, action: deny, match: {source_cidr: [nope]}}]"
        )
        refusal = "rule 'broken' (rules[0]): match.source_cidr"
        wait_until(lambda: refusal in governed.gateway.log(), "the refusal")
        assert_denied(governed.post("/v1/chat/completions", chat("cheap"), key=staff), "staff-no-cheap")
        assert "policy file change refused" in governed.gateway.log()
    finally:
        write_rules(governed.policy_path, RULES)
    wait_until(
        lambda: governed.post("/v1/chat/completions", chat("cheap"), key=staff).status_code == 200,
        "the original rules",
    )


# --- reloads across replicas ----------------------------------------------------------------------


@dataclass
class Replicas:
    gateways: list[Gateway]
    policy_path: Path

    def admin(self, index: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.gateways[index].url}{path}", headers=ADMIN, timeout=20, **kwargs)

    def chat(self, index: int, model: str) -> httpx.Response:
        return httpx.post(f"{self.gateways[index].url}/v1/chat/completions", json=chat(model), headers=MASTER)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    """Two gateways on one Redis, reading one policy file that they never poll (interval 0): only
    ``POST /admin/policies/reload`` and its notice can change their rules."""
    tmp = tmp_path_factory.mktemp("policy-replicas")
    policy_path = tmp / "shared-policy.yaml"
    write_rules(policy_path, RULES)
    env = {
        "ROUTEIQ_MASTER_KEY": MASTER_KEY,
        "ROUTEIQ_ADMIN_KEYS": ADMIN_KEY,
        "ROUTEIQ_REDIS_URL": REDIS_URL,
        "ROUTEIQ_REDIS_KEY_PREFIX": f"test-policy-{uuid.uuid4().hex[:8]}:",
    }
    with MockUpstream() as upstream, ExitStack() as stack:
        config = {
            "model_list": model_list(upstream.base_url),
            "routeiq": {"policy": {"file": str(policy_path), "reload_interval_seconds": 0}},
        }
        gateways = [stack.enter_context(Gateway(config, tmp, env)) for _ in range(2)]
        yield Replicas(gateways, policy_path)


LOCKDOWN = """
rules:
  - {name: lockdown, priority: 1, action: deny, reason: maintenance window}
"""


def test_a_reload_reaches_every_replica_and_is_audited(replicas: Replicas) -> None:
    assert replicas.chat(1, "cheap").status_code == 200
    write_rules(replicas.policy_path, LOCKDOWN)
    time.sleep(0.5)  # a stretch in which a poller, were there one, would pick the change up
    assert replicas.chat(1, "cheap").status_code == 200  # nobody polls: not yet
    try:
        reloaded = replicas.admin(0, "POST", "/admin/policies/reload")
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["rules"] == 1
        for index in (0, 1):
            wait_until(
                lambda index=index: replicas.chat(index, "cheap").status_code == 403, f"replica {index}"
            )
            assert_denied(replicas.chat(index, "cheap"), "lockdown")
            # The control plane and health stay reachable during a lockdown.
            assert replicas.admin(index, "GET", "/admin/policies").json()["rules"][0]["name"] == "lockdown"
            assert httpx.get(f"{replicas.gateways[index].url}/_health/ready").status_code == 200
        audit = replicas.admin(0, "GET", "/admin/audit", params={"action": "policy.reload"}).json()["data"]
        assert audit[0]["outcome"] == "success"
        assert audit[0]["target"] == str(replicas.policy_path)
        assert audit[0]["details"]["rules"] == 1
    finally:
        write_rules(replicas.policy_path, RULES)
        assert replicas.admin(1, "POST", "/admin/policies/reload").status_code == 200
    for index in (0, 1):
        wait_until(
            lambda index=index: replicas.chat(index, "cheap").status_code == 200, f"replica {index} back"
        )


def test_a_bad_file_is_refused_on_reload_and_the_old_rules_keep_serving(replicas: Replicas) -> None:
    before = replicas.admin(0, "GET", "/admin/policies").json()["sha256"]
    write_rules(replicas.policy_path, "rules:\n  - {name: typo, action: deny, match: {teams: [x]}}\n")
    try:
        response = replicas.admin(0, "POST", "/admin/policies/reload")
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_policy"
        assert "rule 'typo' (rules[0]): match.teams: unknown key" in error["message"]
        assert response.headers["x-request-id"]
        for index in (0, 1):
            assert replicas.admin(index, "GET", "/admin/policies").json()["sha256"] == before
        assert replicas.chat(0, "only4o").status_code == 403  # the old rules, still in force
        audit = replicas.admin(0, "GET", "/admin/audit", params={"action": "policy.reload"}).json()["data"]
        assert audit[0]["outcome"] == "failure"
        assert "match.teams" in audit[0]["details"]["error"]
    finally:
        write_rules(replicas.policy_path, RULES)


# --- check-config ------------------------------------------------------------------------------------


def check_config(
    tmp_path: Path, rules_text: str, command: tuple[str, ...] = ("check-config",)
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yaml").write_text(textwrap.dedent(rules_text))
    config = {
        "model_list": [deployment("cheap", "mock-cheap", "http://127.0.0.1:9")],
        "routeiq": {"policy": {"file": "rules.yaml"}},
    }
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "routeiq", *command, str(config_path)],
        capture_output=True,
        text=True,
        cwd="/",  # the policy file is found next to the config, not in the working directory
        timeout=COMMAND_TIMEOUT_SECONDS,
    )


def test_check_config_validates_the_policy_file(tmp_path: Path) -> None:
    good = check_config(tmp_path, RULES)
    assert good.returncode == 0, good.stderr
    assert "rules.yaml: OK - 3 policy rules" in good.stdout

    bad_cidr = check_config(
        tmp_path, "rules: [{name: office, action: deny, match: {source_cidr: ['10.0.0.0/40']}}]"
    )
    assert bad_cidr.returncode == 2
    assert "rule 'office' (rules[0]): match.source_cidr" in bad_cidr.stderr
    assert "'10.0.0.0/40' is not a valid CIDR" in bad_cidr.stderr

    unknown_key = check_config(tmp_path, "rules: [{name: r, action: deny, when: {team: [x]}}]")
    assert unknown_key.returncode == 2 and "rule 'r' (rules[0]): when: unknown key" in unknown_key.stderr

    not_yaml = check_config(tmp_path, "rules: [{name: r")
    assert not_yaml.returncode == 2 and "not valid YAML" in not_yaml.stderr
    assert "Traceback" not in not_yaml.stderr


def test_serve_refuses_to_start_with_a_bad_policy_file(tmp_path: Path) -> None:
    refused = check_config(
        tmp_path, "rules: [{name: r, action: block}]", command=("serve", "--port", "9", "--config")
    )
    assert refused.returncode == 2
    assert "rule 'r' (rules[0]): action: Input should be 'allow' or 'deny'" in refused.stderr
    assert "Traceback" not in refused.stderr
