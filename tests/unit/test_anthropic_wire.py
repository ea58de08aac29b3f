"""The Anthropic-wire fast path's pieces: the endpoint, the headers sent, usage read from a stream."""

from __future__ import annotations

import pytest

from routeiq.executors.anthropic_wire import _Usage, chat_usage, messages_url, upstream_headers
from routeiq.routing.deployments import Deployment, DeploymentTable
from routeiq.settings import DeploymentConfig


def _deployment(api_base: str | None) -> Deployment:
    params = {"model": "anthropic/claude-x", "api_key": "sk-dep", "api_base": api_base}
    entry = DeploymentConfig.model_validate({"model_name": "c", "litellm_params": params})
    (deployment,) = DeploymentTable([entry]).group("c")
    return deployment


@pytest.mark.parametrize(
    ("api_base", "url"),
    [
        (None, "https://api.anthropic.com/v1/messages/count_tokens"),
        ("http://h:1", "http://h:1/v1/messages/count_tokens"),
        ("http://h:1/v1/", "http://h:1/v1/messages/count_tokens"),
        ("http://h:1/v1/messages", "http://h:1/v1/messages/count_tokens"),
    ],
)
def test_the_endpoint_as_litellm_reads_api_base(api_base: str | None, url: str) -> None:
    deployment = _deployment(api_base)
    assert messages_url(deployment, "/count_tokens") == url


def test_the_deployments_key_replaces_the_callers_and_versions_pass() -> None:
    deployment = _deployment(None)
    assert deployment.speaks_anthropic and not deployment.speaks_openai
    client = {"x-api-key": "sk-riq-caller", "anthropic-beta": "b1", "authorization": "Bearer sk-riq-caller"}
    headers = upstream_headers(deployment, client)
    assert headers["x-api-key"] == "sk-dep" and "authorization" not in headers
    assert headers["anthropic-version"] == "2023-06-01" and headers["anthropic-beta"] == "b1"


def test_stream_usage_in_chat_terms() -> None:
    usage = _Usage()
    usage.read(
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":'
        b'{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":1}}}\n\n'
        b'event: ping\ndata: {"type":"ping"}\n\n'
    )
    usage.read(b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":42}}\n\n')
    assert not usage.done
    usage.read(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert usage.done and usage.chat() == {
        "prompt_tokens": 100,
        "completion_tokens": 42,
        "total_tokens": 142,
        "prompt_tokens_details": {"cached_tokens": 90},
    }
    assert chat_usage({"input_tokens": 3, "output_tokens": 4})["total_tokens"] == 7
