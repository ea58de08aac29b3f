"""The default strategy and the deployment table it picks from."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest

from routeiq.routing.catalogue import StrategySpec
from routeiq.routing.deployments import DeploymentTable, litellm_model_list
from routeiq.routing.llmrouter import TierRouting, judge_off_loop
from routeiq.routing.shuffle import WeightedShuffle
from routeiq.routing.strategy import Assessment, RoutingContext
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


class RecordingScorer:
    """A scorer that says which thread judged each prompt."""

    name = "recording"

    def __init__(self, slow: bool) -> None:
        self.slow = slow
        self.threads: list[str] = []

    def assess(self, text: str) -> Assessment:
        self.threads.append(threading.current_thread().name)
        return Assessment(0.9, "reasoning", 0.8, scorer=self.name, complex=True, borderline=False)


def tiered() -> DeploymentTable:
    entries = [
        {"model_name": "auto", "litellm_params": {"model": "openai/a"}, "model_info": {"tier": "budget"}},
        {"model_name": "auto", "litellm_params": {"model": "openai/b"}, "model_info": {"tier": "premium"}},
    ]
    return DeploymentTable([DeploymentConfig.model_validate(entry) for entry in entries])


@pytest.mark.parametrize("slow", [True, False])
def test_a_slow_scorer_judges_in_a_worker_thread_once_and_a_fast_one_inline(slow: bool) -> None:
    scorer = RecordingScorer(slow)
    strategy = TierRouting(StrategySpec("llmrouter-centroid", "test"), scorer)
    candidates = tiered().group("auto")
    context = RoutingContext(
        request_id="r", group="auto", body={"messages": [{"role": "user", "content": "x"}]}
    )

    async def route() -> str:
        await judge_off_loop(strategy, candidates, context)
        first = strategy.choose(candidates, context).deployment.tier or ""
        await judge_off_loop(strategy, candidates, context)  # a retry: judged already
        strategy.choose(candidates, context)
        return first

    assert asyncio.run(route()) == "premium"
    main = threading.main_thread().name
    assert len(scorer.threads) == 1 and (scorer.threads[0] != main) is slow


def test_one_tier_to_choose_from_is_not_judged_even_by_a_slow_scorer() -> None:
    scorer = RecordingScorer(slow=True)
    strategy = TierRouting(StrategySpec("llmrouter-centroid", "test"), scorer)
    candidates = [d for d in tiered().group("auto") if d.tier == "budget"]
    context = RoutingContext(request_id="r", group="auto", body={"messages": []})
    asyncio.run(judge_off_loop(strategy, candidates, context))
    assert strategy.choose(candidates, context).deployment.tier == "budget" and scorer.threads == []


def test_the_shipped_static_encoder_is_judged_inline() -> None:
    from routeiq.routing.classifier import CentroidClassifier
    from routeiq.routing.scoring import CentroidScorer

    assert CentroidScorer(CentroidClassifier.load()).slow is False
    assert CentroidScorer(None).slow is False  # the length rule
