"""The cascade's parts apart from HTTP: the verifiers' strict parsing, the configuration it refuses
(naming the key), the replayed stream, and the usage sums every call is charged by."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from routeiq.config import ConfigError, load_settings
from routeiq.executors.cascade import summed_usage
from routeiq.executors.sse_replay import completion_events
from routeiq.routing.cascade import CascadeStrategy, build_plans, header_value, step_trail, steps_from
from routeiq.routing.deployments import DeploymentTable
from routeiq.routing.strategy import RoutingContext
from routeiq.routing.verifiers import Answer, VerifierFailed
from routeiq.routing.verifiers.judge import JudgeVerifier, judge_body, parse_judgement
from routeiq.routing.verifiers.logprobs import logprob_confidence


@pytest.mark.parametrize(
    "reply,score",
    [("0.8", 0.8), (" 1\n", 1.0), ("0", 0.0), ("1.0", 1.0), (".25", 0.25), ("0.125", 0.125)],
)
def test_a_judge_score_is_read_only_when_it_is_exactly_a_number_in_range(reply: str, score: float) -> None:
    assert parse_judgement(reply, "score") == score


@pytest.mark.parametrize(
    "reply", ["", "0.8 I think", "Score: 0.8", "1.5", "-0.1", "80%", "0,8", "YES", "0.8.", "1e-1", "nan"]
)
def test_anything_else_from_a_judge_is_a_verifier_failure(reply: str) -> None:
    with pytest.raises(VerifierFailed):
        parse_judgement(reply, "score")


@pytest.mark.parametrize("reply,score", [("YES", 1.0), ("no", 0.0), (" Yes \n", 1.0)])
def test_yes_no_judgements(reply: str, score: float) -> None:
    assert parse_judgement(reply, "yes_no") == score


@pytest.mark.parametrize("reply", ["YES.", "Yes, it is right", "Y", "1", "NO!", "maybe"])
def test_yes_no_is_strict(reply: str) -> None:
    with pytest.raises(VerifierFailed):
        parse_judgement(reply, "yes_no")


def test_the_judge_is_shown_the_question_and_the_answer_and_asked_for_its_format() -> None:
    answer = Answer("What is 2 + 3?", "5", {})
    body = judge_body(answer, "yes_no")
    assert "only YES" in body["messages"][0]["content"]
    assert body["messages"][1]["content"] == "Question:\nWhat is 2 + 3?\n\nAnswer:\n5"

    async def judge(group: str, sent: dict[str, Any]) -> str:
        assert group == "judges" and sent == body
        return "NO"

    assert asyncio.run(JudgeVerifier("judges", "yes_no").score(answer, judge)) == 0.0


def completion(logprobs: Any) -> dict[str, Any]:
    return {"choices": [{"message": {"content": "five"}, "logprobs": logprobs}]}


def test_logprob_confidence_is_the_geometric_mean_of_token_probabilities() -> None:
    tokens = [{"token": "a", "logprob": -0.1}, {"token": "b", "logprob": -0.3}]
    assert logprob_confidence(completion({"content": tokens})) == pytest.approx(math.exp(-0.2))


@pytest.mark.parametrize(
    "logprobs",
    [
        None,
        {},
        {"content": []},
        {"content": None},
        {"content": [{"token": "a"}]},
        {"content": [{"token": "a", "logprob": "-0.1"}]},
        {"content": [{"token": "a", "logprob": 0.5}]},  # a log-probability is never positive
        {"content": [{"token": "a", "logprob": float("-inf")}]},
        {"content": [{"token": "a", "logprob": True}]},
    ],
)
def test_missing_or_malformed_logprobs_are_a_verifier_failure(logprobs: Any) -> None:
    with pytest.raises(VerifierFailed):
        logprob_confidence(completion(logprobs))
    with pytest.raises(VerifierFailed):
        logprob_confidence({"choices": []})


def test_the_trail_header_reads_as_the_issue_writes_it() -> None:
    trail = step_trail([("budget", "0.41"), ("premium", None)])
    assert trail == "budget:0.41\u2192premium"
    assert header_value(trail).encode("latin-1") == trail.encode("utf-8")  # sent as UTF-8 bytes


def test_a_whole_answer_replays_as_chat_completion_chunks() -> None:
    answer = {
        "id": "c1",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    events = completion_events(answer, include_usage=True).split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    chunks = [orjson.loads(event[len(b"data: ") :]) for event in events[:-2]]
    assert [chunk["object"] for chunk in chunks] == ["chat.completion.chunk"] * 3
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "hi"}
    assert chunks[1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[2]["choices"] == [] and chunks[2]["usage"]["total_tokens"] == 4
    assert len(completion_events(answer, include_usage=False).split(b"\n\n")) == 4


def test_every_call_is_summed_for_quotas() -> None:
    usages = [
        {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        None,
        {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27, "prompt_tokens_details": {}},
    ]
    assert summed_usage(usages) == {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}
    assert summed_usage([None, {}]) is None


def entry(group: str, model: str, deployment_id: str, tier: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"id": deployment_id}
    if tier is not None:
        info["tier"] = tier
    return {
        "model_name": group,
        "litellm_params": {"model": f"openai/{model}", "api_key": "k"},
        "model_info": info,
    }


def document(cascade: dict[str, Any], **router: Any) -> dict[str, Any]:
    return {
        "model_list": [
            entry("auto", "cheap", "cheap", "budget"),
            entry("auto", "top", "top", "premium"),
            entry("judges", "judge", "judge"),
        ],
        "router_settings": router,
        "routeiq": {"cascades": {"auto": cascade}},
    }


def load(tmp_path: Path, doc: dict[str, Any]) -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_settings(path, environ={})


JUDGED = {"tiers": ["budget", "premium"], "verifier": {"kind": "judge", "group": "judges"}}


def test_a_cascade_group_gets_the_cascade_strategy_and_its_steps(tmp_path: Path) -> None:
    settings = load(tmp_path, document({**JUDGED, "tiers": ["cheap", "premium"], "threshold": 0.7}))
    assert settings.group_strategy_names() == {"auto": "llmrouter-cascade"}
    plans = build_plans(settings, DeploymentTable(settings.model_list))
    assert plans is not None and len(plans) == 1
    plan = plans.get("auto")
    assert plan is not None and plan.threshold == 0.7 and plan.buffers_streams
    assert [(step.label, set(step.deployment_ids)) for step in plan.steps] == [
        ("cheap", {"cheap"}),
        ("premium", {"top"}),
    ]
    assert plan.verifier.name == "judge"
    assert build_plans(load(tmp_path, {"model_list": [entry("auto", "m", "m")]}), DeploymentTable([])) is None


@pytest.mark.parametrize(
    "cascade,router,expected",
    [
        (
            {**JUDGED, "tiers": ["budget", "standard"]},
            {},
            "cascades.auto.tiers: 'standard' is neither a tier",
        ),
        ({**JUDGED, "tiers": ["budget"]}, {}, "cascades.auto.tiers"),
        ({**JUDGED, "tiers": ["budget", "budget"]}, {}, "cascades.auto.tiers: a step is named twice"),
        ({**JUDGED, "verifier": {"kind": "judge"}}, {}, "cascades.auto.verifier.group: the judge needs"),
        ({**JUDGED, "verifier": {"kind": "judge", "group": "judgez"}}, {}, "(did you mean 'judges'?)"),
        ({**JUDGED, "verifier": {"kind": "judge", "group": "auto"}}, {}, "cannot judge its own cascade"),
        ({**JUDGED, "verifier": {"kind": "scorer"}}, {}, "cascades.auto.verifier.artifact: the scorer needs"),
        (
            {**JUDGED, "verifier": {"kind": "logprobs", "artifact": "x"}},
            {},
            "only the scorer reads an artifact",
        ),
        ({**JUDGED, "verifier": {"kind": "oracle"}}, {}, "cascades.auto.verifier.kind"),
        ({**JUDGED, "threshold": 1.5}, {}, "cascades.auto.threshold"),
        ({**JUDGED, "streaming": "sometimes"}, {}, "cascades.auto.streaming"),
        (
            JUDGED,
            {"group_strategies": {"auto": "least-busy"}},
            "a cascade group's strategy is llmrouter-cascade",
        ),
        (JUDGED, {"group_strategies": {"judges": "llmrouter-cascade"}}, "needs routeiq.cascades.judges"),
        (JUDGED, {"routing_strategy": "llmrouter-cascade"}, "is set per group, in routeiq.cascades"),
    ],
)
def test_a_bad_cascade_is_refused_naming_the_key(
    tmp_path: Path, cascade: dict[str, Any], router: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, document(cascade, **router))
    assert expected in str(refused.value)


def test_an_unknown_cascade_group_is_refused(tmp_path: Path) -> None:
    doc = document(JUDGED)
    doc["routeiq"]["cascades"] = {"autoo": JUDGED}
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, doc)
    assert "cascades.autoo: unknown group 'autoo' (did you mean 'auto'?)" in str(refused.value)


def test_a_missing_scorer_artifact_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, document({**JUDGED, "verifier": {"kind": "scorer", "artifact": str(tmp_path / "x")}}))
    assert "cascades.auto.verifier.artifact: " in str(refused.value)


def test_a_scorer_artifact_that_does_not_load_stops_the_build_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"format": "something else"}')
    settings = load(tmp_path, document({**JUDGED, "verifier": {"kind": "scorer", "artifact": str(tmp_path)}}))
    with pytest.raises(ValueError) as refused:
        build_plans(settings, DeploymentTable(settings.model_list))
    assert "cascades.auto.verifier.artifact: cannot load the answer verifier" in str(refused.value)


def test_the_strategy_picks_the_cheapest_of_the_lowest_tier(tmp_path: Path) -> None:
    settings = load(tmp_path, document(JUDGED))
    table = DeploymentTable(settings.model_list)
    context = RoutingContext(request_id="r", group="auto", body={})
    choice = CascadeStrategy().choose(list(table.group("auto"))[::-1], context)
    assert choice.deployment.id == "cheap" and choice.strategy == "llmrouter-cascade"


def test_a_session_floor_skips_the_steps_below_it_but_never_the_last(tmp_path: Path) -> None:
    settings = load(tmp_path, document({**JUDGED, "tiers": ["cheap", "premium"]}))
    plans = build_plans(settings, DeploymentTable(settings.model_list))
    assert plans is not None
    plan = plans.get("auto")
    assert plan is not None
    assert [step.label for step in steps_from(plan.steps, None)] == ["cheap", "premium"]
    assert [step.label for step in steps_from(plan.steps, "budget")] == ["cheap", "premium"]
    assert [step.label for step in steps_from(plan.steps, "standard")] == ["premium"]
    assert [step.label for step in steps_from(plan.steps, "reasoning")] == ["premium"]
