"""The governance layers in their order: Backpressure → Auth → Policy → Quota → Plugins.

Each layer sees only what the ones before it let through, and every refusal, whichever layer
makes it, is an OpenAI-shaped error with the request id.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from routeiq.app import middleware_stack
from routeiq.middleware.auth import AuthMiddleware
from routeiq.middleware.backpressure import BackpressureMiddleware
from routeiq.middleware.plugins import PluginsMiddleware
from routeiq.middleware.policy import PolicyMiddleware
from routeiq.middleware.quota import QuotaMiddleware
from routeiq.middleware.request_id import RequestIdMiddleware
from routeiq.observability.ledger import RequestLedgerMiddleware
from routeiq.resilience.traffic import TrafficGate
from routeiq.runtime_handle import RuntimeHandle
from routeiq.settings import Settings
from tests.support.eventually import eventually_sync
from tests.support.gateway import COMMAND_TIMEOUT_SECONDS, Gateway, deployment
from tests.support.mock_upstream import MockUpstream

MASTER = {"authorization": "Bearer sk-stack-master"}
ADMIN = {"authorization": "Bearer sk-stack-admin"}
METERED_LIMIT = 3


def chat(model: str, text: str = "hello") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("stack")
    (tmp / "policy.yaml").write_text(
        yaml.safe_dump(
            {
                "rules": [
                    {
                        "name": "no-blocked-team",
                        "action": "deny",
                        "reason": "blocked",
                        "match": {"team": ["blocked"]},
                    }
                ]
            }
        )
    )
    with MockUpstream() as upstream:
        config = {
            "model_list": [
                deployment("auto", "mock-alpha", upstream.base_url, id="alpha"),
                deployment("metered", "mock-metered", upstream.base_url, id="metered"),
                deployment("slow", "mock-slow1500ms", upstream.base_url, id="slow"),
            ],
            "routeiq": {
                "max_concurrent_requests": 1,
                "policy": {"file": str(tmp / "policy.yaml")},
                "quotas": {
                    "groups": {"metered": [{"metric": "requests", "window": "day", "limit": METERED_LIMIT}]}
                },
                "plugins": [
                    {"name": "content_filter", "settings": {"categories": {"secret": ["launch codes"]}}}
                ],
            },
        }
        env = {"ROUTEIQ_MASTER_KEY": "sk-stack-master", "ROUTEIQ_ADMIN_KEYS": "sk-stack-admin"}
        with Gateway(config, tmp, env) as running:
            yield running


def test_the_stack_is_declared_in_the_documented_order() -> None:
    settings = Settings(master_key="m", admin_keys=["a"], cors_allow_origins=["*"])
    stack = middleware_stack(settings, TrafficGate(1, 0, 0), RuntimeHandle())
    classes = [entry.cls.__name__ for entry in stack]
    assert classes == [
        "CORSMiddleware",
        RequestIdMiddleware.__name__,
        "AnthropicErrorMiddleware",
        RequestLedgerMiddleware.__name__,
        BackpressureMiddleware.__name__,
        AuthMiddleware.__name__,
        PolicyMiddleware.__name__,
        QuotaMiddleware.__name__,
        PluginsMiddleware.__name__,
        "ModelCallRoutes",
    ]


def test_a_shed_request_is_refused_before_auth_and_carries_the_request_id(gateway: Gateway) -> None:
    slow = threading.Thread(
        target=httpx.post,
        args=(f"{gateway.url}/v1/chat/completions",),
        kwargs={"headers": MASTER, "json": chat("slow"), "timeout": 20},
    )
    slow.start()
    try:
        eventually_sync(lambda: gateway.in_flight(ADMIN) == 1)  # the one slot is taken
        shed = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat("auto"))  # no key at all
        assert shed.status_code == 503, shed.text
        assert shed.json()["error"]["code"] == "overloaded"
        assert shed.headers["x-request-id"] and shed.headers["retry-after"]
    finally:
        slow.join()


def test_policy_never_runs_without_an_identity(gateway: Gateway) -> None:
    for headers in ({}, {"authorization": "Bearer not-a-key"}, {"x-team-id": "blocked"}):
        response = httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers, json=chat("auto"))
        assert response.status_code == 401, response.text
        assert response.headers["x-request-id"]
        assert "x-routeiq-policy-rule" not in response.headers


def test_policy_refuses_before_quota_counts_and_quota_before_plugins_run(gateway: Gateway) -> None:
    created = httpx.post(f"{gateway.url}/admin/keys", headers=ADMIN, json={"team": "blocked"})
    blocked = {"authorization": f"Bearer {created.json()['key']}"}
    for _ in range(METERED_LIMIT + 2):
        denied = httpx.post(f"{gateway.url}/v1/chat/completions", headers=blocked, json=chat("metered"))
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "policy_denied"
        assert denied.headers["x-routeiq-policy-rule"] == "no-blocked-team"
        assert "x-ratelimit-limit-requests" not in denied.headers  # quota never saw it

    # Denied calls used none of the group's allowance; a filtered call uses one (quota came first).
    filtered = httpx.post(
        f"{gateway.url}/v1/chat/completions", headers=MASTER, json=chat("metered", "the launch codes")
    )
    assert filtered.status_code == 400 and filtered.json()["error"]["code"] == "content_filtered"
    assert filtered.headers["x-routeiq-applied-guardrails"] == "content_filter"
    for remaining in range(METERED_LIMIT - 2, -1, -1):
        served = httpx.post(f"{gateway.url}/v1/chat/completions", headers=MASTER, json=chat("metered"))
        assert served.status_code == 200, served.text
        assert served.headers["x-ratelimit-remaining-requests"] == str(remaining)
        assert served.headers["x-routeiq-applied-guardrails"] == "content_filter"

    refused = httpx.post(
        f"{gateway.url}/v1/chat/completions", headers=MASTER, json=chat("metered", "the launch codes")
    )
    assert refused.status_code == 429, refused.text  # the quota answered; the filter never ran
    assert refused.json()["error"]["code"] == "requests_limit_exceeded"
    assert refused.headers["x-request-id"] and refused.headers["retry-after"]
    assert "x-routeiq-applied-guardrails" not in refused.headers


def test_a_malformed_limit_in_the_config_stops_startup_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_list": [deployment("auto", "m", "http://127.0.0.1:9/v1")],
                "routeiq": {
                    "quotas": {"teams": {"a": [{"metric": "requests", "window": "week", "limit": 5}]}}
                },
            }
        )
    )
    for command in (["check-config", str(config)], ["serve", "--config", str(config)]):
        result = subprocess.run(
            [sys.executable, "-m", "routeiq", *command],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        assert result.returncode == 2, result.stderr
        assert "routeiq.quotas.teams.a.0.window" in result.stderr and "Traceback" not in result.stderr
