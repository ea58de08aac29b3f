"""Malformed OpenAI requests end at the first layer that reads them, through the real server.

With virtual keys, quotas and plugins configured, a body with a bad known field gets a 400 in the
OpenAI envelope naming the field, with ``x-request-id``; it never reaches the upstream, no guardrail
runs on it, and no quota counts it. Unknown fields still reach the upstream as sent. And group
limits count the group that serves a request, whatever name (profile, case variant) asked for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

pytestmark = pytest.mark.usefixtures("clear_of_hour_rollover")  # counts calls in hour windows

MASTER = "sk-validation-master"
ADMIN_KEY = "sk-validation-admin"
GUARDRAILS = "x-routeiq-applied-guardrails"
GOOD_MESSAGES = [{"role": "user", "content": "hello"}]


def hourly(metric: str, amount: float) -> dict[str, Any]:
    # Hour windows: no window rolls over in the middle of a test.
    return {"metric": metric, "window": "hour", "limit": amount}


def governed_config(api_base: str) -> dict[str, Any]:
    prices = {"input_cost_per_token": 0.00001, "output_cost_per_token": 0.00001}
    return {
        "model_list": [
            deployment("auto", "mock-alpha", api_base, id="alpha", tier="budget"),
            deployment("auto", "mock-beta", api_base, id="beta", tier="premium"),
            deployment("guarded", "mock-guarded", api_base, id="guarded", **prices),
            deployment("embed", "mock-embed", api_base, id="embed"),
        ],
        "router_settings": {"num_retries": 0},
        "routeiq": {
            "quotas": {"groups": {"auto": [hourly("requests", 3)], "guarded": [hourly("requests", 100)]}},
            "plugins": [{"name": "pii"}, {"name": "cost_tracker"}],
        },
    }


@dataclass
class Stack:
    gateway: Gateway
    upstream: MockUpstream

    def post(
        self, body: Any, key: str = MASTER, path: str = "/v1/chat/completions", **headers: str
    ) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.url}{path}",
            json=body,
            headers={"authorization": f"Bearer {key}", **headers},
            timeout=20,
        )

    def new_key(self, **fields: Any) -> tuple[str, str]:
        """A virtual key's secret and id."""
        created = httpx.post(
            f"{self.gateway.url}/admin/keys",
            json=fields,
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10,
        )
        assert created.status_code in (200, 201), created.text
        return str(created.json()["key"]), str(created.json()["key_id"])

    def spend_request_ids(self, key_id: str) -> list[str]:
        records = httpx.get(
            f"{self.gateway.url}/admin/spend/records",
            params={"key_id": key_id},
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10,
        )
        assert records.status_code == 200, records.text
        return [record["request_id"] for record in records.json()["data"]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"ROUTEIQ_MASTER_KEY": MASTER, "ROUTEIQ_ADMIN_KEYS": ADMIN_KEY}
    tmp: Path = tmp_path_factory.mktemp("validation")
    with MockUpstream() as upstream, Gateway(governed_config(upstream.base_url), tmp, env) as gateway:
        yield Stack(gateway, upstream)


def chat(model: str = "guarded", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": GOOD_MESSAGES, **fields}


MALFORMED = [
    (chat(messages=[{"role": "wizard", "content": "hi"}]), "messages.0.role"),
    (chat(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
    (
        chat(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]),
        "messages.0.content.0.text",
    ),
    (chat(temperature="hot"), "temperature"),
    (chat(max_tokens=-5), "max_tokens"),
    (chat(n=0), "n"),
    (chat(stop=5), "stop"),
    (chat(tools="calculator"), "tools"),
    (chat(response_format={"type": "yaml"}), "response_format.type"),
    (chat(stream=True, stream_options="usage"), "stream_options"),
    ({"model": "guarded"}, "messages"),
]


def assert_openai_400(response: httpx.Response, param: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert response.headers["x-request-id"]


def test_malformed_requests_never_reach_plugins_quotas_or_the_upstream(stack: Stack) -> None:
    # A key allowing 3 requests an hour: had any malformed request been counted, the key would be
    # spent before the good request at the end.
    key, key_id = stack.new_key(limits=[hourly("requests", 3)], budget_usd=1.0)
    stack.upstream.clear()
    for index, (body, param) in enumerate(MALFORMED):
        response = stack.post(body, key, **{"x-request-id": f"bad-{index}"})
        assert_openai_400(response, param)
        assert response.headers["x-request-id"] == f"bad-{index}"
        assert GUARDRAILS not in response.headers  # no guardrail ran on it
        assert "x-ratelimit-remaining-requests" not in response.headers  # nothing reserved
    assert stack.upstream.requests == []

    good = stack.post(chat(), key, **{"x-request-id": "good"})
    assert good.status_code == 200, good.text
    assert good.headers["x-ratelimit-remaining-requests"] == "2"  # the key's first counted request
    assert good.headers[GUARDRAILS] == "pii"
    assert len(stack.upstream.requests) == 1
    # Charged once, for the good request only (the spend log is written off the request path).
    eventually_sync(lambda: bool(stack.spend_request_ids(key_id)))
    assert stack.spend_request_ids(key_id) == ["good"]


def test_the_dry_run_and_other_endpoints_validate_the_same_way(stack: Stack) -> None:
    stack.upstream.clear()
    assert_openai_400(stack.post(chat(temperature="hot"), path="/v1/routeiq/route"), "temperature")
    assert_openai_400(stack.post(chat(temperature="hot"), path="/chat/completions"), "temperature")
    assert_openai_400(stack.post({"model": "guarded", "prompt": 5}, path="/v1/completions"), "prompt")
    body = {"model": "embed", "input": "x", "encoding_format": "hex"}
    assert_openai_400(stack.post(body, path="/v1/embeddings"), "encoding_format")
    assert stack.upstream.requests == []


def test_unknown_fields_reach_the_upstream_as_sent(stack: Stack) -> None:
    extras = {
        "x_vendor_option": {"nested": [1, 2.5, None, True, "é"], "deep": {"k": "v"}},
        "metadata": {"trace": "abc"},
        "reasoning_effort": "low",
    }
    stack.upstream.clear()
    response = stack.post(chat(temperature=0.5, **extras))
    assert response.status_code == 200, response.text
    (sent,) = [entry["body"] for entry in stack.upstream.requests]
    assert {name: sent[name] for name in extras} == extras
    assert sent["temperature"] == 0.5


def test_group_limits_count_the_group_that_serves_the_request(stack: Stack) -> None:
    """3 requests an hour on ``auto``: asking for it as ``premium``, ``eco`` or ``AUTO`` (profile
    names, served by ``auto``) counts against the same limit as asking for ``auto``."""
    remaining = []
    for model in ("premium", "eco", "auto"):
        response = stack.post(chat(model))
        assert response.status_code == 200, response.text
        assert response.headers["x-routeiq-group"] == "auto"
        remaining.append(response.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]
    for model in ("AUTO", "Auto", "free", "reasoning", "auto"):
        refused = stack.post(chat(model))
        assert refused.status_code == 429, (model, refused.text)
        assert refused.json()["error"]["code"] == "requests_limit_exceeded"
        assert "'auto'" in refused.json()["error"]["message"]


# --- without any governance layer, the API validates the same way ---------------------------------


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("validation-bare")
    with MockUpstream() as upstream:
        config = {"model_list": [deployment("auto", "mock-alpha", upstream.base_url, id="alpha")]}
        with Gateway(config, tmp, {"ROUTEIQ_MASTER_KEY": MASTER}) as gateway:
            yield Stack(gateway, upstream)


def test_without_governance_the_api_refuses_the_same_bodies(bare: Stack) -> None:
    bare.upstream.clear()
    for body, param in MALFORMED:
        assert_openai_400(bare.post({**body, "model": "auto"}), param)
    assert bare.upstream.requests == []
    assert bare.post(chat("auto")).status_code == 200
    assert len(bare.upstream.requests) == 1
