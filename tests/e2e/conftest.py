"""Fixtures that run the real gateway process against the mock upstream, once per executor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream
from tests.support.windows import wait_clear_of_hour_rollover

MASTER_KEY = "sk-test-master"
ADMIN_KEY = "sk-test-admin"


def gateway_config(api_base: str) -> dict[str, Any]:
    return {
        "model_list": [
            deployment("auto", "mock-alpha", api_base, id="alpha", tier="budget"),
            deployment("auto", "mock-beta", api_base, id="beta", tier="premium"),
            deployment("flaky", "flaky-one", api_base, id="flaky-one"),
            deployment("flaky", "flaky-two", api_base, id="flaky-two"),
            deployment("primary", "primary-fail500", api_base, id="primary-down"),
            deployment("broken", "gpt-fail500", api_base, id="broken"),
            deployment("limited", "gpt-fail429", api_base, id="limited"),
            deployment("rejecting", "gpt-fail400", api_base, id="rejecting"),
            deployment("midstream", "gpt-midstream", api_base, id="midstream"),
            {
                **deployment("stuck", "gpt-hang", api_base, id="stuck"),
                "litellm_params": {
                    "model": "openai/gpt-hang",
                    "api_base": api_base,
                    "api_key": "sk-upstream",
                    "timeout": 1,
                },
            },
            deployment("embed", "mock-embed", api_base, id="embed"),
        ],
        "router_settings": {
            "num_retries": 1,
            "allowed_fails": 0,
            "cooldown_time": 60,
            "fallbacks": [{"primary": ["auto"]}],
        },
        "routeiq": {"max_request_body_bytes": 65536},
    }


# Longer than any test that counts calls in an hour window takes, even on a loaded machine.
HOUR_TEST_MARGIN_SECONDS = 90


@pytest.fixture
def clear_of_hour_rollover() -> None:
    """For tests that count calls in an hour window (``pytestmark`` of their module)."""
    wait_clear_of_hour_rollover(HOUR_TEST_MARGIN_SECONDS)


@dataclass
class Stack:
    executor: str
    gateway: Gateway
    upstream: MockUpstream

    def client(self, with_v1: bool = True, **options: Any) -> openai.OpenAI:
        base = f"{self.gateway.url}/v1" if with_v1 else self.gateway.url
        options.setdefault("api_key", MASTER_KEY)
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", 20)
        return openai.OpenAI(base_url=base, **options)


@pytest.fixture(scope="module", params=["passthrough", "litellm"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    executor = request.param
    env = {
        "ROUTEIQ_MASTER_KEY": MASTER_KEY,
        "ROUTEIQ_ADMIN_KEYS": ADMIN_KEY,
        "ROUTEIQ_PASSTHROUGH": "auto" if executor == "passthrough" else "off",
    }
    tmp: Path = tmp_path_factory.mktemp(executor)
    with MockUpstream() as upstream, Gateway(gateway_config(upstream.base_url), tmp, env) as gateway:
        yield Stack(executor, gateway, upstream)
