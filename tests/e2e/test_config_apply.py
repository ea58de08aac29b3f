"""PUT /admin/config through the real server, on both state backends: two workers on Redis, and one
worker on in-process state. One gateway per backend for the module.

Every wait is on the ``config`` version the workers report at ``GET /admin/changes``, never a sleep.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

ADMIN = {"authorization": "Bearer sk-admin"}
REDIS_URL = "redis://127.0.0.1:6379/0"
UPSTREAM_SECRET = "sk-upstream-very-secret"
CONVERGE_SECONDS = 30.0


@dataclass
class Stack:
    gateway: Gateway
    upstream: MockUpstream
    workers: int

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.gateway.url}{path}", headers=ADMIN, timeout=60, **kwargs)

    def chat(self, model: str) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
        return httpx.post(f"{self.gateway.url}/v1/chat/completions", json=body, timeout=30)

    def wait_config(self, version: int) -> None:
        """Until every worker reports ``version`` of the config subject."""

        def converged() -> None:
            view = self.admin("GET", "/admin/changes").json()
            applied = [report["applied"].get("config") for report in view["instances"].values()]
            assert len(applied) == self.workers and set(applied) == {version}, view

        eventually_sync(converged, timeout=CONVERGE_SECONDS)


def base_config(api_base: str) -> dict[str, Any]:
    alpha = deployment("auto", "mock-alpha", api_base, id="alpha")
    alpha["litellm_params"]["api_key"] = UPSTREAM_SECRET
    return {
        "model_list": [alpha, deployment("stream", "mock-chunkdelay400ms", api_base, id="streamer")],
        "router_settings": {"routing_strategy": "simple-shuffle"},
        "routeiq": {"max_request_body_bytes": 65536},
    }


@pytest.fixture(scope="module", params=["redis", "memory"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp_path: Path = tmp_path_factory.mktemp(f"config-apply-{request.param}")
    env = {"ROUTEIQ_ADMIN_KEYS": "sk-admin"}
    workers = 1
    if request.param == "redis":
        env["ROUTEIQ_REDIS_URL"] = REDIS_URL
        env["ROUTEIQ_REDIS_KEY_PREFIX"] = f"test-config-{uuid.uuid4().hex[:8]}:"
        workers = 2
    with ExitStack() as exits:
        upstream = exits.enter_context(MockUpstream())
        gateway = Gateway(base_config(upstream.base_url), tmp_path, env, args=("--workers", str(workers)))
        exits.enter_context(gateway)
        gateway.wait_for_log("router built", count=workers)
        yield Stack(gateway, upstream, workers)


def served_yaml(stack: Stack) -> dict[str, Any]:
    response = stack.admin("GET", "/admin/config")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def test_admin_key_required(stack: Stack) -> None:
    url = stack.gateway.url
    for method, path in (("GET", ""), ("PUT", ""), ("POST", "/validate"), ("POST", "/diff")):
        response = httpx.request(method, f"{url}/admin/config{path}", json={"yaml": ""}, timeout=10)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["type"] == "authentication_error"


def test_get_redacts_every_secret(stack: Stack) -> None:
    view = served_yaml(stack)
    assert view["source"] == "file" and view["version"] == 0 and view["hot_reload"] is False
    assert UPSTREAM_SECRET not in view["yaml"] and UPSTREAM_SECRET not in str(view["config"])
    alpha = view["config"]["model_list"][0]
    assert alpha["litellm_params"]["api_key"] == "***"
    assert alpha["litellm_params"]["api_base"] == stack.upstream.base_url  # not a secret


def test_validate_reports_paths_and_lines(stack: Stack) -> None:
    config = base_config(stack.upstream.base_url)
    config["routeiq"]["max_request_body_bytes"] = "lots"
    config["router_settings"]["routing_strategy"] = "no-such-strategy"
    response = stack.admin("POST", "/admin/config/validate", json={"yaml": yaml.safe_dump(config)})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["valid"] is False
    paths = {error["path"] for error in result["errors"]}
    assert {"routeiq.max_request_body_bytes", "router_settings.routing_strategy"} <= paths, result

    broken = stack.admin("POST", "/admin/config/validate", json={"yaml": "model_list:\n  - a: [1\n"})
    (error,) = broken.json()["errors"]
    assert error["line"] is not None and "not valid YAML" in error["message"]

    good = stack.admin("POST", "/admin/config/validate", json={"yaml": served_yaml(stack)["yaml"]})
    assert good.json() == {"valid": True, "errors": []}  # the redacted document, *** and all


def test_diff_lists_changed_paths(stack: Stack) -> None:
    document = yaml.safe_load(served_yaml(stack)["yaml"])
    document["router_settings"]["num_retries"] = 3
    response = stack.admin("POST", "/admin/config/diff", json={"yaml": yaml.safe_dump(document)})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["errors"] == []
    assert result["changes"] == [{"path": "router_settings.num_retries", "old": None, "new": 3}]
    assert "+  num_retries: 3" in result["diff"] and UPSTREAM_SECRET not in result["diff"]


def test_invalid_put_is_refused_whole_and_the_old_config_serves(stack: Stack) -> None:
    before = stack.admin("GET", "/admin/changes").json()["subjects"].get("config", 0)
    document = yaml.safe_load(served_yaml(stack)["yaml"])
    document["model_list"].append(deployment("extra", "mock-extra", stack.upstream.base_url))
    document["router_settings"]["num_retries"] = -1
    response = stack.admin("PUT", "/admin/config", json={"yaml": yaml.safe_dump(document)})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"]["param"] == "router_settings.num_retries"
    assert body["errors"][0]["path"] == "router_settings.num_retries"

    restart = yaml.safe_load(served_yaml(stack)["yaml"])
    restart.setdefault("routeiq", {})["max_concurrent_requests"] = 7
    refused = stack.admin("PUT", "/admin/config", json={"yaml": yaml.safe_dump(restart)})
    assert (
        refused.status_code == 400 and refused.json()["error"]["param"] == "routeiq.max_concurrent_requests"
    )

    assert stack.admin("GET", "/admin/changes").json()["subjects"].get("config", 0) == before
    assert stack.chat("extra").status_code == 404
    assert stack.chat("auto").status_code == 200


def test_put_applies_on_every_worker_while_a_stream_finishes(stack: Stack) -> None:
    # A stream that started before the PUT finishes after it, whole, on the runtime it began on.
    chunks: list[str] = []
    started = threading.Event()

    def stream() -> None:
        body = {"model": "stream", "messages": [{"role": "user", "content": "tell me"}], "stream": True}
        with httpx.stream("POST", f"{stack.gateway.url}/v1/chat/completions", json=body, timeout=60) as r:
            for line in r.iter_lines():
                started.set()
                chunks.append(line)

    reader = threading.Thread(target=stream)
    reader.start()
    assert started.wait(20)

    document = yaml.safe_load(served_yaml(stack)["yaml"])  # api_key: "***" keeps the secret
    document["model_list"].append(deployment("extra", "mock-extra", stack.upstream.base_url, id="extra"))
    response = stack.admin("PUT", "/admin/config", json={"yaml": yaml.safe_dump(document)})
    assert response.status_code == 200, response.text
    applied = response.json()
    assert applied["applied"] is True and applied["version"] >= 1
    stack.wait_config(applied["change_version"])
    assert reader.is_alive(), "the stream should outlast the apply"
    reader.join(60)
    assert [line for line in chunks if line][-1] == "data: [DONE]", chunks[-3:]

    # Every worker serves the new group (each answers some of 20 requests).
    assert all(stack.chat("extra").status_code == 200 for _ in range(20))
    # The secret behind "***" is the one the upstream still gets.
    stack.upstream.clear()
    assert stack.chat("auto").status_code == 200
    assert stack.upstream.requests[-1]["headers"]["authorization"] == f"Bearer {UPSTREAM_SECRET}"

    view = served_yaml(stack)
    assert view["source"] == "applied" and view["version"] == applied["version"]
    assert UPSTREAM_SECRET not in view["yaml"]

    audit = stack.admin("GET", "/admin/audit", params={"action": "config.apply", "limit": 10}).json()
    outcomes = [(record["outcome"], record["details"].get("version")) for record in audit["data"]]
    assert ("success", applied["version"]) in outcomes, audit
    assert any(outcome == "failure" for outcome, _ in outcomes), "the refused PUTs are audited too"


def test_the_applied_config_survives_a_restart_while_the_file_is_unchanged(stack: Stack) -> None:
    before = served_yaml(stack)
    assert before["source"] == "applied"
    stack.gateway.stop()
    stack.gateway.start()
    stack.gateway.wait_for_log("router built", count=stack.workers)
    after = served_yaml(stack)
    assert (after["source"], after["version"]) == ("applied", before["version"])
    assert stack.chat("extra").status_code == 200


def test_hot_reload_applies_a_changed_file(stack: Stack) -> None:
    document = yaml.safe_load(served_yaml(stack)["yaml"])
    document["routeiq"]["config_hot_reload"] = True
    turned_on = stack.admin("PUT", "/admin/config", json={"yaml": yaml.safe_dump(document)})
    assert turned_on.status_code == 200, turned_on.text
    stack.wait_config(turned_on.json()["change_version"])
    assert served_yaml(stack)["hot_reload"] is True

    config = base_config(stack.upstream.base_url)
    config["model_list"].append(deployment("hot", "mock-hot", stack.upstream.base_url, id="hot"))
    config["routeiq"]["config_hot_reload"] = True
    stack.gateway.config_path.write_text(yaml.safe_dump(config))

    def reloaded() -> None:
        view = stack.admin("GET", "/admin/changes").json()
        applied = {report["applied"].get("config") for report in view["instances"].values()}
        assert (
            applied == {view["subjects"]["config"]}
            and view["subjects"]["config"] > turned_on.json()["change_version"]
        ), view

    eventually_sync(reloaded, timeout=CONVERGE_SECONDS)
    assert all(stack.chat("hot").status_code == 200 for _ in range(10))
    assert stack.chat("extra").status_code == 404  # the file is the whole config now
    audit = stack.admin("GET", "/admin/audit", params={"action": "config.apply", "limit": 1}).json()
    assert audit["data"][0]["actor"] == "system:config-file"


def test_a_live_strategy_outlives_an_apply_until_the_document_changes_the_strategies(stack: Stack) -> None:
    def strategies(view: dict[str, Any] | None = None) -> set[str]:
        responses = [stack.chat("auto") for _ in range(10)]
        assert all(response.status_code == 200 for response in responses)
        return {response.headers["x-routeiq-strategy"] for response in responses}

    def wait_strategies(version: int) -> None:
        def converged() -> None:
            view = stack.admin("GET", "/admin/changes").json()
            applied = [report["applied"].get("routing.strategies") for report in view["instances"].values()]
            assert len(applied) == stack.workers and set(applied) == {version}, view

        eventually_sync(converged, timeout=CONVERGE_SECONDS)

    live = stack.admin("PUT", "/admin/strategy", json={"strategy": "cost-based-routing"})
    assert live.status_code == 200, live.text
    wait_strategies(live.json()["version"])

    document = yaml.safe_load(served_yaml(stack)["yaml"])
    document["router_settings"]["num_retries"] = 2
    applied = stack.admin("PUT", "/admin/config", json={"yaml": yaml.safe_dump(document)})
    assert applied.status_code == 200, applied.text
    stack.wait_config(applied.json()["change_version"])
    assert strategies() == {"cost-based-routing"}  # handed to the new runtimes

    document["router_settings"]["routing_strategy"] = "least-busy"
    applied = stack.admin("PUT", "/admin/config", json={"yaml": yaml.safe_dump(document)})
    assert applied.status_code == 200, applied.text
    stack.wait_config(applied.json()["change_version"])
    wait_strategies(live.json()["version"] + 1)
    assert strategies() == {"least-busy"}

    # A group strategy the document adds, then drops: the group is back on the default.
    document["router_settings"]["group_strategies"] = {"auto": "cost-based-routing"}
    applied = stack.admin("PUT", "/admin/config", json={"yaml": yaml.safe_dump(document)})
    assert applied.status_code == 200, applied.text
    stack.wait_config(applied.json()["change_version"])
    wait_strategies(live.json()["version"] + 2)
    assert strategies() == {"cost-based-routing"}

    del document["router_settings"]["group_strategies"]
    applied = stack.admin("PUT", "/admin/config", json={"yaml": yaml.safe_dump(document)})
    assert applied.status_code == 200, applied.text
    stack.wait_config(applied.json()["change_version"])
    wait_strategies(live.json()["version"] + 3)
    assert strategies() == {"least-busy"}
