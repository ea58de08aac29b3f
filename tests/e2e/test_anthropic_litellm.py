"""/v1/messages and /v1/responses with ROUTEIQ_PASSTHROUGH=off: every call translated and served by
LiteLLM, an Anthropic deployment included (LiteLLM calls the mock's Anthropic side)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

MASTER_KEY = "sk-test-master"
USER = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, MockUpstream]]:
    with MockUpstream() as upstream:
        claude = {
            "model_name": "claude",
            "litellm_params": {
                "model": "anthropic/claude-mock",
                "api_base": upstream.base_url.removesuffix("/v1"),
                "api_key": "sk-upstream",
            },
        }
        config: dict[str, Any] = {
            "model_list": [deployment("auto", "mock-toolargs", upstream.base_url, id="alpha"), claude],
            "router_settings": {"num_retries": 0},
        }
        env = {"ROUTEIQ_MASTER_KEY": MASTER_KEY, "ROUTEIQ_PASSTHROUGH": "off"}
        with Gateway(config, tmp_path_factory.mktemp("litellm-messages"), env) as running:
            yield running, upstream


@pytest.fixture
def client(gateway: tuple[Gateway, MockUpstream]) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway[0].url, api_key=MASTER_KEY, max_retries=0, timeout=30)


@pytest.mark.parametrize(("model", "served"), [("auto", "mock-toolargs"), ("claude", "claude-mock")])
def test_messages_through_litellm(client: anthropic.Anthropic, model: str, served: str) -> None:
    message = client.messages.create(model=model, max_tokens=64, system="Be brief.", messages=USER)
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith(f"mock reply from {served}")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    with client.messages.stream(model=model, max_tokens=64, messages=USER, tools=[WEATHER]) as stream:
        final = stream.get_final_message()
    (tool_use,) = final.content
    assert tool_use.type == "tool_use" and tool_use.input == {"city": "mock-city"}
    assert final.stop_reason == "tool_use" and final.usage.output_tokens > 0


def test_responses_through_litellm(gateway: tuple[Gateway, MockUpstream]) -> None:
    client = openai.OpenAI(base_url=f"{gateway[0].url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30)
    with client.responses.stream(model="claude", input="What is the capital of France?") as stream:
        final = stream.get_final_response()
    assert final.output_text.startswith("mock reply from claude-mock")
    assert final.usage is not None and final.usage.output_tokens > 0
