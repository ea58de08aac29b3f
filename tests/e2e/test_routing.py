"""Intelligent routing through HTTP on the demo config: tiers, profiles, sessions, the dry run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway

ROOT = Path(__file__).resolve().parents[2]
EASY = "What is the capital of France?"
HARD = (
    "Design a horizontally sharded double-entry ledger service with exactly-once transfer semantics "
    "across shards, describe the failure modes of the two-phase protocol you choose, and prove that "
    "the global balance invariant holds under crash-recovery of any participant."
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    with Gateway(config, tmp_path_factory.mktemp("routing")) as gateway:
        yield gateway


def chat(gateway: Gateway, text: str, **kwargs: object) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], **kwargs}
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response


def test_classifier_is_loaded(demo: Gateway) -> None:
    ready = httpx.get(f"{demo.url}/_health/ready").json()
    assert ready["checks"]["classifier"] == "ok"


def test_simple_prompt_goes_to_budget_and_hard_one_to_premium(demo: Gateway) -> None:
    easy = chat(demo, EASY)
    assert easy.headers["x-routeiq-tier"] == "budget"
    assert easy.headers["x-routeiq-strategy"] == "llmrouter-centroid"
    assert easy.headers["x-routeiq-decision"].startswith("budget/")
    assert 0 <= float(easy.headers["x-routeiq-confidence"]) <= 1
    hard = chat(demo, HARD)
    assert hard.headers["x-routeiq-tier"] == "premium"
    assert "the premium deployment" in hard.json()["choices"][0]["message"]["content"]


def test_profiles_override_the_classifier(demo: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{demo.url}/v1", api_key="unused", max_retries=0)
    by_header = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": EASY}],
        extra_headers={"x-routeiq-profile": "premium"},
    )
    assert by_header.headers["x-routeiq-tier"] == "premium"
    assert by_header.headers["x-routeiq-profile"] == "premium"
    by_body = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": HARD}], extra_body={"routeiq": {"profile": "eco"}}
    )
    assert by_body.headers["x-routeiq-tier"] in {"budget", "standard"}
    by_model = client.chat.completions.with_raw_response.create(
        model="premium", messages=[{"role": "user", "content": EASY}]
    )
    assert by_model.headers["x-routeiq-tier"] == "premium" and by_model.headers["x-routeiq-group"] == "auto"


def test_unknown_profile_is_a_bad_request(demo: Gateway) -> None:
    response = httpx.post(
        f"{demo.url}/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": EASY}]},
        headers={"x-routeiq-profile": "luxury"},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "profile"


def test_session_escalates_and_never_drops_a_tier(demo: Gateway) -> None:
    session = {"x-routeiq-session-id": "conversation-42"}
    url = f"{demo.url}/v1/chat/completions"

    def turn(text: str) -> str:
        body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
        return httpx.post(url, json=body, headers=session, timeout=30).headers["x-routeiq-tier"]

    assert turn(EASY) == "budget"
    assert turn(HARD) == "premium"  # the conversation turned hard: escalate
    assert turn(EASY) == "premium"  # and it stays there
    assert turn("thanks!") == "premium"


def test_dry_run_explains_without_calling_a_model(demo: Gateway) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": HARD}]}
    preview = httpx.post(f"{demo.url}/v1/routeiq/route", json=body).json()
    assert preview["decision"]["tier"] == "premium"
    assert preview["strategy"] == "llmrouter-centroid"
    assert 0.0 <= preview["assessment"]["p_strong"] <= 1.0
    assert {c["deployment_id"] for c in preview["candidates"]} == {
        "demo-budget",
        "demo-standard",
        "demo-premium",
    }
    assert sum(c["chosen"] for c in preview["candidates"]) == 1


def test_routing_metrics_and_decision_event(demo: Gateway) -> None:
    chat(demo, EASY)
    metrics = httpx.get(f"{demo.url}/metrics").text
    decisions = [line for line in metrics.splitlines() if line.startswith("routeiq_routing_decisions_total{")]
    assert any(
        'strategy="llmrouter-centroid"' in line
        and 'tier="budget"' in line
        and 'served_model="demo-budget"' in line
        for line in decisions
    ), decisions
    assert "routeiq_routing_latency_seconds_count" in metrics

    def decision_events() -> list[str]:  # events are written in batches, twice a second
        events = [line for line in demo.log().splitlines() if '"event":"routing_decision"' in line]
        assert events, "every routed request logs a decision event"
        return events

    events = eventually_sync(decision_events)
    assert EASY not in "\n".join(events), "decision events carry no prompt text"


def test_corrupt_classifier_is_loud_and_routing_falls_back_to_the_length_rule(tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "classifier"
    shutil.copytree(ROOT / "data" / "classifier", broken)
    (broken / "centroids.npz").write_bytes(b"not the shipped centroids")
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config.setdefault("routeiq", {})["classifier_dir"] = str(broken)
    with Gateway(config, tmp_path) as gateway:
        ready = httpx.get(f"{gateway.url}/_health/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["classifier"].startswith("degraded")
        easy = chat(gateway, EASY)
        assert "length-rule" in easy.headers["x-routeiq-reason"]
        assert easy.headers["x-routeiq-tier"] == "budget"  # short: the rule says simple
        metrics = httpx.get(f"{gateway.url}/metrics").text
        assert "routeiq_classifier_fallbacks_total 1.0" in metrics
