"""Schemathesis over the gateway's own OpenAPI schema: no generated request may get a 5xx.

The gateway runs as production does: master, admin and virtual keys, shared state in Redis, a
policy file, a quota, and the guardrails and cost tracker on. The data plane is exercised with a
virtual key and the control plane with the admin key. The example count and seed are fixed, so a
failure reproduces with the command printed in the report.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

REDIS_URL = "redis://127.0.0.1:6379/6"  # a database of its own, emptied first
MASTER = "sk-fuzz-master"
ADMIN = "sk-fuzz-admin"
SEED = 20261129
MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("fuzz")
    redis.Redis.from_url(REDIS_URL).flushdb()
    policy = {"rules": [{"name": "no-blocked", "action": "deny", "match": {"team": ["blocked"]}}]}
    (tmp / "policy.yaml").write_text(yaml.safe_dump(policy))
    with MockUpstream() as upstream:
        config = {
            "model_list": [
                deployment("auto", "mock-alpha", upstream.base_url, id="alpha", tier="budget"),
                deployment("auto", "mock-beta", upstream.base_url, id="beta", tier="premium"),
                deployment("embed", "mock-embed", upstream.base_url, id="embed"),
            ],
            "routeiq": {
                "policy": {"file": str(tmp / "policy.yaml")},
                "quotas": {"groups": {"auto": [{"metric": "requests", "window": "minute", "limit": 100000}]}},
                "plugins": [{"name": "pii"}, {"name": "prompt_injection"}, {"name": "cost_tracker"}],
            },
        }
        env = {"ROUTEIQ_MASTER_KEY": MASTER, "ROUTEIQ_ADMIN_KEYS": ADMIN, "ROUTEIQ_REDIS_URL": REDIS_URL}
        with Gateway(config, tmp, env) as running:
            yield running


def virtual_key(gateway: Gateway) -> str:
    response = httpx.post(
        f"{gateway.url}/admin/keys",
        headers={"authorization": f"Bearer {ADMIN}"},
        json={"name": "fuzz", "team": "fuzzers", "rpm_limit": 100000, "budget_usd": 1000},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def schemathesis(gateway: Gateway, key: str, tag: str, report_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{gateway.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--header",
        f"authorization: Bearer {key}",
        "--include-path-regex",
        "^/admin" if tag == "admin" else "^/(v1|_health)",
        # The live metrics stream answers until the client leaves: every request to it would time out.
        "--exclude-path",
        "/admin/metrics/stream",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]
    # Its own working directory: schemathesis keeps a cache folder there.
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=report_dir)


@pytest.mark.parametrize("plane", ["data", "admin"])
def test_no_generated_request_gets_a_server_error(gateway: Gateway, plane: str, tmp_path: Path) -> None:
    key = virtual_key(gateway) if plane == "data" else ADMIN
    result = schemathesis(gateway, key, plane, tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Traceback" not in gateway.log()
