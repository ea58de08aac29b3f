"""The ``llmrouter-cascade`` strategy through HTTP, on mock deployments: one gateway, every verifier.

The cheap deployment's answer is scripted per request (``[[mock-cheap-scripted:...]]`` in the prompt,
see ``tests.support.mock_upstream``), and so is a judge's and the token log-probabilities, so each test
decides whether the verifier accepts the cheap answer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import redis

from routeiq.routing.learned.verifier import save_verifier, train_verifier
from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

MASTER_KEY = "sk-cascade-master"
ADMIN_KEY = "sk-cascade-admin"
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
CHEAP, PREMIUM = "mock-cheap-scripted", "mock-premium"
CHEAP_PRICE, PREMIUM_PRICE, JUDGE_PRICE = 1e-6, 1e-5, 2e-6
QUESTION = "What is 2 + 3?"
REDIS_URL = "redis://127.0.0.1:6379/0"


def right(a: int, b: int) -> str:
    """What the trained scorer below takes for a right answer..."""
    return f"{a} + {b} = {a + b}\nThe answer is {a + b}"


def wrong(a: int, b: int) -> str:
    """...and for a wrong one: arithmetic that does not hold, and hedging."""
    return f"{a} + {b} = {a + b + 2}, maybe roughly {a + b + 2}.5? Sorry, I am not sure"


RIGHT, WRONG = right(2, 3), wrong(2, 3)


def priced(entry: dict[str, Any], price: float) -> dict[str, Any]:
    entry.setdefault("model_info", {}).update(input_cost_per_token=price, output_cost_per_token=price)
    return entry


def ladder(group: str, api_base: str) -> list[dict[str, Any]]:
    """A cheap budget deployment and a premium one in ``group``."""
    return [
        priced(deployment(group, CHEAP, api_base, id=f"{group}-cheap", tier="budget"), CHEAP_PRICE),
        priced(deployment(group, PREMIUM, api_base, id=f"{group}-top", tier="premium"), PREMIUM_PRICE),
    ]


def train_scorer(directory: Path) -> Path:
    """A tiny answer verifier: stated, correct arithmetic with a final answer is right; wrong
    arithmetic with hedging is wrong."""
    prompts, answers, labels = [], [], []
    for a in range(2, 14):
        for b in range(3, 9):
            for answer, label in ((right(a, b), 1), (wrong(a, b), 0)):
                prompts.append(marked(f"train-{a}-{b}", answer).replace(QUESTION, f"What is {a} + {b}?"))
                answers.append(answer)
                labels.append(label)
    verifier = train_verifier(prompts, answers, np.array(labels), l2=1.0)
    return save_verifier(verifier, directory / "verifier")


def cascade_config(api_base: str, artifact: Path) -> dict[str, Any]:
    model_list = [
        *ladder("scored", api_base),
        *ladder("judged", api_base),
        *ladder("slow-judged", api_base),
        *ladder("broken-judged", api_base),
        *ladder("confident", api_base),
        priced(deployment("judge", "mock-judge-scripted", api_base, id="judge"), JUDGE_PRICE),
        deployment("slow-judge", "mock-judge-scripted-slow5000ms", api_base, id="slow-judge"),
        deployment("broken-judge", "judge-fail500", api_base, id="broken-judge"),
        deployment("plain", "mock-plain", api_base, id="plain"),
    ]

    def judged_by(group: str, **options: Any) -> dict[str, Any]:
        verifier = {"kind": "judge", "group": group, **options}
        return {"tiers": ["budget", "premium"], "verifier": verifier, "threshold": 0.5}

    return {
        "model_list": model_list,
        "router_settings": {"num_retries": 0, "allowed_fails": 100, "cooldown_time": 1},
        "routeiq": {
            "master_key": MASTER_KEY,
            "cascades": {
                "scored": {
                    "tiers": ["budget", "premium"],
                    "verifier": {"kind": "scorer", "artifact": str(artifact)},
                    "threshold": 0.5,
                },
                "judged": judged_by("judge"),
                "slow-judged": judged_by("slow-judge", timeout_seconds=0.5),
                "broken-judged": judged_by("broken-judge", format="yes_no"),
                "confident": {
                    "tiers": ["confident-cheap", "premium"],  # a deployment id, then a tier
                    "verifier": {"kind": "logprobs"},
                    "threshold": 0.9,
                    "streaming": "bypass",
                },
            },
        },
    }


@dataclass
class Cascade:
    gateway: Gateway
    upstream: MockUpstream

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20)

    def ask(self, group: str, prompt: str, **options: Any) -> tuple[httpx.Headers, Any]:
        raw = self.client().chat.completions.with_raw_response.create(
            model=group, messages=[{"role": "user", "content": prompt}], **options
        )
        return raw.headers, raw.parse()

    def upstream_models(self, marker: str) -> list[str]:
        """The models the mock was asked for with ``marker`` in the request (in order)."""
        return [r["body"]["model"] for r in self.upstream.requests if marker in str(r["body"])]

    def spend_rows(self, request_id: str, count: int) -> list[dict[str, Any]]:
        def written() -> list[dict[str, Any]]:
            page = httpx.get(f"{self.gateway.url}/admin/spend/records", headers=ADMIN, params={"limit": 1000})
            rows = [row for row in page.json()["data"] if row["request_id"] == request_id]
            assert len(rows) >= count, rows
            return rows

        return sorted(eventually_sync(written), key=lambda row: row["deployment_id"])

    def decision(self, request_id: str) -> dict[str, Any]:
        def written() -> dict[str, Any]:
            response = httpx.get(f"{self.gateway.url}/admin/routing-decisions/{request_id}", headers=ADMIN)
            assert response.status_code == 200, response.text
            return dict(response.json())

        return eventually_sync(written)


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cascade]:
    tmp = tmp_path_factory.mktemp("cascade")
    artifact = train_scorer(tmp)
    with MockUpstream() as upstream:
        config = cascade_config(upstream.base_url, artifact)
        with Gateway(config, tmp, {"ROUTEIQ_ADMIN_KEYS": ADMIN_KEY}) as gateway:
            yield Cascade(gateway, upstream)


def marked(tag: str, cheap: str, extra: str = "") -> str:
    """A prompt unique to one test (``tag``) that scripts the cheap model's answer."""
    return f"{QUESTION} ({tag}) [[{CHEAP}:{cheap}]] {extra}"


def test_an_answer_the_scorer_accepts_stays_cheap(cascade: Cascade) -> None:
    headers, answer = cascade.ask("scored", marked("scorer-pass", RIGHT))
    assert answer.choices[0].message.content == RIGHT
    assert headers["x-routeiq-deployment-id"] == "scored-cheap"
    assert headers["x-routeiq-strategy"] == "llmrouter-cascade"
    label, score = headers["x-routeiq-cascade"].split(":")
    assert label == "budget" and float(score) >= 0.5
    assert cascade.upstream_models("scorer-pass") == [CHEAP]
    (row,) = cascade.spend_rows(headers["x-request-id"], 1)
    assert row["deployment_id"] == "scored-cheap"


def test_an_answer_the_scorer_rejects_escalates_and_every_call_is_charged(cascade: Cascade) -> None:
    headers, answer = cascade.ask("scored", marked("scorer-fail", WRONG))
    assert answer.choices[0].message.content.startswith(f"mock reply from {PREMIUM}")
    assert headers["x-routeiq-deployment-id"] == "scored-top"
    steps = headers["x-routeiq-cascade"].split("\u2192")  # budget:0.0x→premium
    assert steps[1] == "premium" and steps[0].startswith("budget:") and float(steps[0][7:]) < 0.5
    assert headers["x-routeiq-attempted-deployments"] == "scored-cheap,scored-top"
    assert cascade.upstream_models("scorer-fail") == [CHEAP, PREMIUM]
    cheap, top = cascade.spend_rows(headers["x-request-id"], 2)
    assert (cheap["deployment_id"], top["deployment_id"]) == ("scored-cheap", "scored-top")
    assert cheap["cost_usd"] == pytest.approx((cheap["input_tokens"] + cheap["output_tokens"]) * CHEAP_PRICE)
    assert top["cost_usd"] == pytest.approx((top["input_tokens"] + top["output_tokens"]) * PREMIUM_PRICE)
    total = cheap["cost_usd"] + top["cost_usd"]
    assert float(headers["x-routeiq-cost"]) == pytest.approx(total, rel=1e-6)
    record = cascade.decision(headers["x-request-id"])
    assert record["cost_usd"] == pytest.approx(total, rel=1e-6)  # what quotas settle: every call
    assert record["input_tokens"] == cheap["input_tokens"] + top["input_tokens"]
    assert record["deployment"] == "scored-top"
    assert headers["x-routeiq-cascade"] in record["reason"]
    assert [a["deployment"] for a in record["attempted"]] == ["scored-cheap", "scored-top"]
    assert record["attempted"][0]["error_code"] == "cascade_escalated"


def test_a_session_that_escalated_stays_on_the_tier_it_reached(cascade: Cascade) -> None:
    session = {"x-routeiq-session-id": "cascade-session"}
    headers, _ = cascade.ask("scored", marked("session-1", WRONG), extra_headers=session)
    assert headers["x-routeiq-cascade"].endswith("\u2192premium")
    headers, _ = cascade.ask("scored", marked("session-2", RIGHT), extra_headers=session)
    assert headers["x-routeiq-cascade"] == "premium"  # the cheap step is below the session's floor
    assert cascade.upstream_models("session-2") == [PREMIUM]


def test_a_judge_that_accepts_keeps_the_cheap_answer_and_is_charged(cascade: Cascade) -> None:
    headers, answer = cascade.ask("judged", marked("judge-pass", "five", "[[mock-judge-scripted: 0.8\n]]"))
    assert answer.choices[0].message.content == "five"
    assert headers["x-routeiq-cascade"] == "budget:0.80"
    assert cascade.upstream_models("judge-pass") == [CHEAP, "mock-judge-scripted"]
    judge = next(
        r["body"]
        for r in cascade.upstream.requests
        if "judge-pass" in str(r["body"]) and r["body"]["model"] != CHEAP
    )
    assert "Answer:\nfive" in judge["messages"][-1]["content"]
    rows = {row["deployment_id"]: row for row in cascade.spend_rows(headers["x-request-id"], 2)}
    assert set(rows) == {"judged-cheap", "judge"}
    assert rows["judge"]["group"] == "judge" and rows["judge"]["cost_usd"] > 0


@pytest.mark.parametrize(
    "group,judged,verdict",
    [
        ("judged", "[[mock-judge-scripted:0.8, I think]]", "error"),  # off-format: a verifier failure
        ("judged", "[[mock-judge-scripted:0.2]]", "0.20"),  # a low score
        ("broken-judged", "", "error"),  # the judge's upstream answers 500
        ("slow-judged", "[[mock-judge-scripted-slow5000ms:0.9]]", "timeout"),  # past timeout_seconds
    ],
)
def test_a_rejecting_failing_or_slow_judge_escalates(
    cascade: Cascade, group: str, judged: str, verdict: str
) -> None:
    began = time.monotonic()
    headers, answer = cascade.ask(group, marked(f"judge-{group}-{verdict}", "five", judged))
    assert headers["x-routeiq-cascade"] == f"budget:{verdict}\u2192premium"
    assert answer.choices[0].message.content.startswith(f"mock reply from {PREMIUM}")
    assert headers["x-routeiq-deployment-id"] == f"{group}-top"
    if verdict == "timeout":
        assert time.monotonic() - began < 4.5, "the judge's 5 s were not waited for"
        # The judge was called, so it is charged: its prompt at the estimate, no answer.
        rows = {row["deployment_id"]: row for row in cascade.spend_rows(headers["x-request-id"], 3)}
        assert set(rows) == {"slow-judged-cheap", "slow-judge", "slow-judged-top"}
        assert rows["slow-judge"]["input_tokens"] > 0 and rows["slow-judge"]["output_tokens"] == 0


def test_logprob_confidence_decides_and_the_client_gets_no_logprobs_it_did_not_ask_for(
    cascade: Cascade,
) -> None:
    headers, answer = cascade.ask("confident", marked("lp-high", "five", "[[logprob:-0.01]]"))
    assert headers["x-routeiq-cascade"] == "confident-cheap:0.99"
    assert answer.choices[0].logprobs is None
    (cheap_call,) = [r["body"] for r in cascade.upstream.requests if "lp-high" in str(r["body"])]
    assert cheap_call["logprobs"] is True
    headers, answer = cascade.ask("confident", marked("lp-low", "five", "[[logprob:-3]]"))
    assert headers["x-routeiq-cascade"] == "confident-cheap:0.05\u2192premium"
    headers, answer = cascade.ask("confident", marked("lp-asked", "five", "[[logprob:-0.01]]"), logprobs=True)
    assert answer.choices[0].logprobs is not None and answer.choices[0].logprobs.content


def test_a_stream_is_buffered_verified_and_sent_as_events(cascade: Cascade) -> None:
    stream = cascade.client().chat.completions.with_raw_response.create(
        model="scored",
        messages=[{"role": "user", "content": marked("stream-fail", WRONG)}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["x-routeiq-cascade"].endswith("\u2192premium")
    chunks = list(stream.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(f"mock reply from {PREMIUM}")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(
        r["body"].get("stream") is None for r in cascade.upstream.requests if "stream-fail" in str(r["body"])
    )
    cascade.spend_rows(stream.headers["x-request-id"], 2)


def test_a_group_that_bypasses_streams_routes_them_to_the_cheapest_without_a_cascade(
    cascade: Cascade,
) -> None:
    stream = cascade.client().chat.completions.with_raw_response.create(
        model="confident",
        messages=[{"role": "user", "content": marked("stream-bypass", "five", "[[logprob:-3]]")}],
        stream=True,
    )
    assert "x-routeiq-cascade" not in stream.headers
    assert stream.headers["x-routeiq-deployment-id"] == "confident-cheap"
    assert "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices) == "five"
    (call,) = [r["body"] for r in cascade.upstream.requests if "stream-bypass" in str(r["body"])]
    assert call["stream"] is True and "logprobs" not in call


def test_a_group_without_a_cascade_is_routed_as_before(cascade: Cascade) -> None:
    headers, answer = cascade.ask("plain", "hello (plain)")
    assert "x-routeiq-cascade" not in headers
    assert headers["x-routeiq-strategy"] != "llmrouter-cascade"
    assert answer.choices[0].message.content.startswith("mock reply from mock-plain")


def test_a_cascade_whose_verifier_cannot_load_stops_startup_naming_the_key(tmp_path: Path) -> None:
    config = cascade_config("http://127.0.0.1:9/v1", tmp_path / "no-verifier-here")
    with pytest.raises(RuntimeError) as refused:
        Gateway(config, tmp_path).start()
    assert "cascades.scored.verifier.artifact: " in str(refused.value)
    assert "holds no verifier artifact (manifest.json)" in str(refused.value)


def anthropic_client(cascade: Cascade) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=cascade.gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=20)


@pytest.mark.parametrize("answer", ["pass", "fail"])
def test_a_messages_call_cascades_in_chat_form_and_is_answered_in_its_own_api(
    cascade: Cascade, answer: str
) -> None:
    tag = f"messages-{answer}"
    raw = anthropic_client(cascade).messages.with_raw_response.create(
        model="scored",
        max_tokens=64,
        messages=[{"role": "user", "content": marked(tag, RIGHT if answer == "pass" else WRONG)}],
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    text = message.content[0].text
    trail = raw.headers["x-routeiq-cascade"]
    if answer == "pass":
        assert text == RIGHT and trail.startswith("budget:") and "\u2192" not in trail
        assert cascade.upstream_models(tag) == [CHEAP]
        cascade.spend_rows(raw.headers["x-request-id"], 1)
    else:
        assert text.startswith(f"mock reply from {PREMIUM}") and trail.endswith("\u2192premium")
        assert raw.headers["x-routeiq-deployment-id"] == "scored-top"
        assert cascade.upstream_models(tag) == [CHEAP, PREMIUM]
        rows = cascade.spend_rows(raw.headers["x-request-id"], 2)
        assert [row["deployment_id"] for row in rows] == ["scored-cheap", "scored-top"]
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_a_streamed_messages_call_is_buffered_verified_and_sent_as_anthropic_events(cascade: Cascade) -> None:
    with anthropic_client(cascade).messages.stream(
        model="scored",
        max_tokens=64,
        messages=[{"role": "user", "content": marked("messages-stream", WRONG)}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith(f"mock reply from {PREMIUM}") and final.stop_reason == "end_turn"
    assert cascade.upstream_models("messages-stream") == [CHEAP, PREMIUM]
    assert all(
        r["body"].get("stream") is None
        for r in cascade.upstream.requests
        if "messages-stream" in str(r["body"])
    )


def test_a_responses_call_cascades_too_whole_or_streamed(cascade: Cascade) -> None:
    raw = cascade.client().responses.with_raw_response.create(
        model="scored", input=marked("responses-fail", WRONG)
    )
    assert raw.parse().output_text.startswith(f"mock reply from {PREMIUM}")
    assert raw.headers["x-routeiq-cascade"].endswith("\u2192premium")
    assert cascade.upstream_models("responses-fail") == [CHEAP, PREMIUM]
    cascade.spend_rows(raw.headers["x-request-id"], 2)
    events = list(
        cascade.client().responses.create(
            model="scored", input=marked("responses-stream", WRONG), stream=True
        )
    )
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text.startswith(f"mock reply from {PREMIUM}") and events[-1].type == "response.completed"
    assert cascade.upstream_models("responses-stream") == [CHEAP, PREMIUM]


# --- with governance on: Redis state, a virtual key with a request limit, the pii guardrail ------

GOVERNED_LIMIT = 4
EMAIL = "jane.doe@example.com"


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cascade]:
    tmp = tmp_path_factory.mktemp("cascade-governed")
    artifact = train_scorer(tmp)
    prefix = f"routeiq-test-cascade-{uuid.uuid4().hex[:8]}:"
    with MockUpstream() as upstream:
        config = {
            "model_list": ladder("scored", upstream.base_url),
            "router_settings": {"num_retries": 0, "allowed_fails": 100},
            "routeiq": {
                "master_key": MASTER_KEY,
                "redis_url": REDIS_URL,
                "redis_key_prefix": prefix,
                "plugins": [{"name": "pii"}],
                "cascades": {
                    "scored": {
                        "tiers": ["budget", "premium"],
                        "verifier": {"kind": "scorer", "artifact": str(artifact)},
                        "threshold": 0.5,
                    }
                },
            },
        }
        try:
            with Gateway(config, tmp, {"ROUTEIQ_ADMIN_KEYS": ADMIN_KEY}) as gateway:
                yield Cascade(gateway, upstream)
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)


@pytest.mark.usefixtures("clear_of_hour_rollover")  # counts requests in an hour window
def test_concurrent_cascades_on_a_limited_key_count_requests_not_calls_and_are_guarded(
    governed: Cascade,
) -> None:
    """Chat and Messages calls at once on a key allowed 4 requests an hour: exactly 4 answer, each
    escalating (two upstream calls, both with the e-mail address masked, two spend rows on the key);
    the others are refused with each API's own error shape and a request id."""
    created = httpx.post(
        f"{governed.gateway.url}/admin/keys",
        headers=ADMIN,
        json={"limits": [{"metric": "requests", "window": "hour", "limit": GOVERNED_LIMIT}]},
    )
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["key_id"]
    auth = {"authorization": f"Bearer {key}"}

    def send(index: int) -> httpx.Response:
        prompt = marked(f"governed-{index}", WRONG, f"reply to {EMAIL}")
        if index % 2:
            body = {"model": "scored", "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
            return httpx.post(f"{governed.gateway.url}/v1/messages", json=body, headers=auth, timeout=20)
        body = {"model": "scored", "messages": [{"role": "user", "content": prompt}]}
        return httpx.post(f"{governed.gateway.url}/v1/chat/completions", json=body, headers=auth, timeout=20)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(send, range(2 * GOVERNED_LIMIT)))
    answered = [(i, r) for i, r in enumerate(responses) if r.status_code == 200]
    refused = [(i, r) for i, r in enumerate(responses) if r.status_code != 200]
    assert len(answered) == GOVERNED_LIMIT, [r.text for r in responses]
    for index, response in refused:
        assert response.status_code == 429 and response.headers["x-request-id"]
        error = response.json()
        if index % 2:  # Anthropic's shape on /v1/messages
            assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
        else:
            assert error["error"]["code"] == "requests_limit_exceeded"
    for index, response in answered:
        assert response.headers["x-routeiq-cascade"].endswith("\u2192premium")
        calls = [r["body"] for r in governed.upstream.requests if f"governed-{index})" in str(r["body"])]
        assert [call["model"] for call in calls] == [CHEAP, PREMIUM]
        assert all(EMAIL not in str(call) for call in calls)  # the guardrail's masking reached both steps
        rows = governed.spend_rows(response.headers["x-request-id"], 2)
        assert [(row["deployment_id"], row["key_id"]) for row in rows] == [
            ("scored-cheap", key_id),
            ("scored-top", key_id),
        ]
