"""The default strategy and the deployment table it picks from."""

from __future__ import annotations

from collections import Counter

from routeiq.routing.deployments import DeploymentTable, litellm_model_list
from routeiq.routing.shuffle import WeightedShuffle
from routeiq.routing.strategy import RoutingContext
from routeiq.settings import DeploymentConfig


def table() -> DeploymentTable:
    entries = [
        {
            "model_name": "auto",
            "litellm_params": {"model": "openai/a", "api_key": "sk-secret-123", "weight": 9},
        },
        {
            "model_name": "auto",
            "litellm_params": {"model": "anthropic/b", "weight": 1},
            "model_info": {"tier": "premium"},
        },
        {"model_name": "auto", "litellm_params": {"model": "openai/c", "weight": 0, "mock_response": "hi"}},
    ]
    return DeploymentTable([DeploymentConfig.model_validate(entry) for entry in entries])


def test_ids_executors_and_credentials() -> None:
    deployments = table().group("auto")
    assert [d.id for d in deployments] == ["auto-1", "auto-2", "auto-3"]
    assert [d.speaks_openai for d in deployments] == [
        True,
        False,
        False,
    ]  # anthropic translates; mocks answer locally
    assert deployments[0].api_base == "https://api.openai.com/v1"
    assert deployments[0].upstream_headers["authorization"] == "Bearer sk-secret-123"
    assert "sk-secret-123" not in repr(deployments[0])  # credentials stay out of logs


def test_litellm_gets_ids_but_not_routeiq_keys() -> None:
    entries = [
        DeploymentConfig.model_validate(
            {"model_name": "g", "litellm_params": {"model": "openai/x"}, "model_info": {"tier": "budget"}}
        )
    ]
    (entry,) = litellm_model_list(entries)
    assert entry["model_info"] == {"id": "g-1"}


def test_weighted_shuffle_follows_weights() -> None:
    candidates = table().group("auto")
    strategy = WeightedShuffle(seed=7)
    context = RoutingContext(request_id="r", group="auto", body={})
    picks = Counter(strategy.choose(candidates, context).deployment.id for _ in range(2000))
    assert picks["auto-3"] == 0  # weight 0 is never picked while others have weight
    assert 0.85 < picks["auto-1"] / 2000 < 0.95


def test_single_candidate_reason() -> None:
    only = table().group("auto")[:1]
    decision = WeightedShuffle().choose(only, RoutingContext(request_id="r", group="auto", body={}))
    assert decision.deployment.id == "auto-1" and decision.reason == "only healthy deployment"
