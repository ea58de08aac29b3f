"""Failures a user can understand, on both executors: which deployments were tried and why each
failed, in RouteIQ's words and headers; a 200 that is no answer counted as a failure; fallbacks
within a key's reach; one decision record and one spend row per request; a warning line per failure."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.e2e.conftest import ADMIN_KEY, MASTER_KEY
from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
SECRET_PROMPT = "the launch code is 0000-swordfish"
USER = [{"role": "user", "content": SECRET_PROMPT}]
BROKEN_200S = [(mode, stream) for mode in ("badjson", "error200") for stream in (False, True)]


def failures_config(api_base: str, decision_log: Path) -> dict[str, Any]:
    model_list = [
        deployment("ok", "mock-ok", api_base, id="ok"),
        deployment("broken", "broken-fail500", api_base, id="broken"),
        deployment("primary", "primary-fail500", api_base, id="primary-down"),
        deployment("backup", "backup-fail500", api_base, id="backup-down"),
        deployment("limited", "limited-fail429", api_base, id="limited"),
        deployment("fail", "fail-fail500", api_base, id="fail-down"),
        deployment("secret", "secret-model", api_base, id="secret"),
        weighted(deployment("mixed", "mixed-badjson", api_base, id="mixed-bad"), 1_000_000),
        weighted(deployment("mixed", "mixed-good", api_base, id="mixed-good"), 1),
        deployment("logged", "logged-fail500", api_base, id="logged-down"),
        deployment("late", "late-lateerror-chunkdelay200ms", api_base, id="late"),
        deployment("slow", "slow-slow1500ms", api_base, id="slow"),
        deployment("text-bad", "text-error200", api_base, id="text-bad"),
    ]
    for mode, stream in BROKEN_200S:
        name = broken_group(mode, stream)
        model_list.append(deployment(name, name, api_base, id=name))
    return {
        "model_list": model_list,
        "router_settings": {
            "num_retries": 1,
            "allowed_fails": 0,
            "cooldown_time": 60,
            "fallbacks": [{"primary": ["backup"]}, {"fail": ["secret"]}],
            "group_strategies": {"mixed": "simple-shuffle"},  # the garbling deployment first
        },
        "routeiq": {
            "decision_log": str(decision_log),
            "max_concurrent_requests": 1,
            "queue_max_depth": 0,
            # One failure opens a breaker: a failure that counts shows at once.
            "circuit_breaker": {"consecutive_failures": 1},
        },
    }


def weighted(entry: dict[str, Any], weight: float) -> dict[str, Any]:
    entry["litellm_params"]["weight"] = weight
    return entry


def broken_group(mode: str, stream: bool) -> str:
    return f"{mode}-{'stream' if stream else 'whole'}"


@dataclass
class Failing:
    executor: str
    gateway: Gateway
    upstream: MockUpstream
    decision_log: Path

    def client(self, **options: Any) -> openai.OpenAI:
        options.setdefault("api_key", MASTER_KEY)
        return openai.OpenAI(base_url=f"{self.gateway.url}/v1", max_retries=0, timeout=20, **options)

    def chat(self, model: str, key: str = MASTER_KEY, **body: Any) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.url}/v1/chat/completions",
            json={"model": model, "messages": USER, **body},
            headers={"authorization": f"Bearer {key}"},
            timeout=20,
        )

    def decisions(self) -> list[dict[str, Any]]:
        if not self.decision_log.exists():
            return []
        return [json.loads(line) for line in self.decision_log.read_text().splitlines() if line]

    def decisions_for(self, request_id: str, count: int = 1) -> list[dict[str, Any]]:
        """The decision records of one request, once ``count`` of them are written (batched)."""

        def written() -> None:
            found = [d for d in self.decisions() if d["request_id"] == request_id]
            assert len(found) >= count, f"no decision record for {request_id}"

        eventually_sync(written)
        time.sleep(1.2)  # two more flushes: a second record for the same request would show by now
        return [d for d in self.decisions() if d["request_id"] == request_id]

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.gateway.url}/metrics", headers=ADMIN).text
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture(scope="module", params=["passthrough", "litellm"])
def failing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Failing]:
    executor = request.param
    tmp: Path = tmp_path_factory.mktemp(f"failures-{executor}")
    env = {
        "ROUTEIQ_MASTER_KEY": MASTER_KEY,
        "ROUTEIQ_ADMIN_KEYS": ADMIN_KEY,
        "ROUTEIQ_PASSTHROUGH": "auto" if executor == "passthrough" else "off",
    }
    decision_log = tmp / "decisions.jsonl"
    with (
        MockUpstream() as upstream,
        Gateway(failures_config(upstream.base_url, decision_log), tmp, env) as gateway,
    ):
        yield Failing(executor, gateway, upstream, decision_log)


def test_every_attempt_and_the_fallbacks_are_named_in_routeiq_words(failing: Failing) -> None:
    response = failing.chat("primary")
    assert response.status_code == 502
    error = response.json()["error"]
    message = error["message"]
    assert "primary-down" in message and "backup-down" in message
    assert "upstream_error" in message and "500" in message
    assert "Fallbacks ran: backup." in message
    assert "litellm" not in message.lower() and "No fallback was attempted" not in message
    assert error["code"] == "upstream_error"
    headers = response.headers
    assert headers["x-routeiq-group"] == "primary"
    assert headers["x-routeiq-strategy"]
    assert headers["x-routeiq-attempted-deployments"] == "primary-down,backup-down"
    assert headers["x-routeiq-fallback-groups"] == "backup"
    assert headers["x-request-id"]


def test_a_lone_failing_deployment_says_no_fallback_is_configured(failing: Failing) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        failing.client().chat.completions.create(model="broken", messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    message = caught.value.body["message"]  # type: ignore[index]
    assert "deployment broken answered 500" in message
    assert "No fallback group is configured for 'broken'." in message
    assert "litellm" not in message.lower()
    assert caught.value.response.headers["x-routeiq-attempted-deployments"] == "broken"


def test_rate_limited_everywhere_keeps_its_status_and_retry_after(failing: Failing) -> None:
    response = failing.chat("limited")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "upstream_rate_limited"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-routeiq-attempted-deployments"] == "limited"


def test_a_failed_request_logs_one_warning_line_without_the_prompt(failing: Failing) -> None:
    response = failing.chat("logged")
    assert response.status_code == 502
    request_id = response.headers["x-request-id"]
    eventually_sync(lambda: request_id in failing.gateway.log())
    lines = [line for line in failing.gateway.log().splitlines() if request_id in line]
    assert len(lines) == 1 and "WARNING" in lines[0] and "request failed" in lines[0]
    fields = json.loads(lines[0].split("request failed ", 1)[1])
    assert fields["request_id"] == request_id and fields["group"] == "logged" and fields["status"] == 502
    assert fields["attempted_deployments"] == ["logged-down"]
    assert fields["failure_classes"] == ["upstream_error"]
    assert SECRET_PROMPT not in failing.gateway.log()
    served = failing.chat("ok")  # a served request logs no warning
    assert served.status_code == 200 and served.headers["x-request-id"] not in failing.gateway.log()


@pytest.mark.parametrize(("mode", "stream"), BROKEN_200S)
def test_a_200_that_is_no_answer_is_a_counted_failure(failing: Failing, mode: str, stream: bool) -> None:
    group = broken_group(mode, stream)
    with pytest.raises(openai.InternalServerError) as caught:
        result = failing.client().chat.completions.create(model=group, messages=USER, stream=stream)  # type: ignore[arg-type, call-overload]
        if stream:
            list(result)
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_invalid_response"  # type: ignore[index]
    assert f"deployment {group} answered 200 with" in caught.value.body["message"]  # type: ignore[index]
    assert (
        failing.metric("routeiq_attempt_failures_total", deployment=group, code="upstream_invalid_response")
        == 1
    )
    # Counted where health is decided: its circuit breaker opened.
    again = failing.chat(group)
    assert again.status_code == 503 and again.json()["error"]["code"] == "circuit_open"


def test_a_legacy_completion_with_an_error_body_is_a_failure(failing: Failing) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        failing.client().completions.create(model="text-bad", prompt="Say hi")
    assert caught.value.body["code"] == "upstream_invalid_response"  # type: ignore[index]


def test_a_garbled_200_is_retried_on_another_deployment(failing: Failing) -> None:
    response = failing.chat("mixed")
    assert response.status_code == 200, response.text
    assert response.headers["x-routeiq-attempted-deployments"] == "mixed-bad,mixed-good"
    assert response.headers["x-routeiq-failed-deployments"] == "mixed-bad"
    assert response.json()["usage"]["total_tokens"] > 0


def test_an_error_event_mid_stream_ends_it_in_routeiq_words_and_is_recorded(failing: Failing) -> None:
    raw = failing.client().chat.completions.with_raw_response.create(model="late", messages=USER, stream=True)  # type: ignore[arg-type]
    request_id = raw.headers["x-request-id"]
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in raw.parse():
            received.append(chunk)
    assert received, "the chunks before the failure reach the client"
    assert "deployment late" in caught.value.message and "litellm" not in caught.value.message.lower()
    (record,) = failing.decisions_for(request_id)
    assert (record["outcome"], record["status"]) == ("interrupted", 200)
    assert record["error_code"] == "upstream_stream_interrupted"
    eventually_sync(lambda: request_id in failing.gateway.log())
    (line,) = [line for line in failing.gateway.log().splitlines() if request_id in line]
    assert "WARNING" in line and '"error_code":"upstream_stream_interrupted"' in line
    assert (
        failing.metric(
            "routeiq_attempt_failures_total", deployment="late", code="upstream_stream_interrupted"
        )
        == 1
    )


def test_fallbacks_stay_within_the_keys_allowed_groups(failing: Failing) -> None:
    created = httpx.post(
        f"{failing.gateway.url}/admin/keys", headers=ADMIN, json={"allowed_groups": ["fail"]}
    )
    assert created.status_code == 201, created.text
    failing.upstream.clear()
    response = failing.chat("fail", key=created.json()["key"])
    assert response.status_code == 502, response.text
    assert "'secret': not tried, outside this key's allowed groups." in response.json()["error"]["message"]
    assert response.headers["x-routeiq-fallback-groups"] == "none"
    asked = [r["body"]["model"] for r in failing.upstream.requests if isinstance(r["body"], dict)]
    assert "secret-model" not in asked and "fail-fail500" in asked
    # The master key's reach is every group: the same request falls back to "secret".
    served = failing.chat("fail")
    assert served.status_code == 200 and served.headers["x-routeiq-group"] == "secret"


def test_one_decision_record_per_request_whatever_its_outcome(failing: Failing) -> None:
    served = failing.chat("ok")
    streamed = failing.chat("ok", stream=True)
    failed = failing.chat("primary")  # its breaker is open by now: a 503 nothing was tried for
    refused = failing.chat("no-such-group")
    unauthorised = httpx.post(
        f"{failing.gateway.url}/v1/chat/completions", json={"model": "ok", "messages": USER}
    )
    expected = {
        served: ("ok", 200, None),
        streamed: ("ok", 200, None),
        failed: ("failed", 503, "circuit_open"),
        refused: ("rejected", 404, "model_not_found"),
        unauthorised: ("rejected", 401, "missing_api_key"),
    }
    for response, (outcome, status, code) in expected.items():
        assert response.status_code == status, response.text
        (record,) = failing.decisions_for(response.headers["x-request-id"])
        assert (record["outcome"], record["status"], record["error_code"]) == (outcome, status, code)
    (record,) = failing.decisions_for(served.headers["x-request-id"])
    assert record["deployment"] == "ok" and record["attempted_deployments"] == ["ok"]
    assert SECRET_PROMPT not in failing.decision_log.read_text()


def test_a_failed_attempt_shows_in_the_decision_record(failing: Failing) -> None:
    response = failing.chat("mixed")  # mixed-bad is cooling down: the good one answers at once
    assert response.status_code == 200
    (record,) = failing.decisions_for(response.headers["x-request-id"])
    assert record["outcome"] == "ok" and record["deployment"] == "mixed-good"
    response = failing.chat("limited")
    (record,) = failing.decisions_for(response.headers["x-request-id"])
    assert record["outcome"] == "failed" and record["status"] in (429, 503)


def test_a_shed_request_has_its_decision_record(failing: Failing) -> None:
    """max_concurrent_requests is 1 here: while a slow request runs, the next one is shed."""
    slow: list[httpx.Response] = []
    runner = threading.Thread(target=lambda: slow.append(failing.chat("slow")))
    runner.start()
    try:
        eventually_sync(
            lambda: any(r["body"]["model"] == "slow-slow1500ms" for r in failing.upstream.requests)
        )
        shed = failing.chat("ok")
    finally:
        runner.join()
    assert shed.status_code == 503 and shed.json()["error"]["code"] == "overloaded"
    (record,) = failing.decisions_for(shed.headers["x-request-id"])
    assert (record["outcome"], record["status"], record["error_code"]) == ("shed", 503, "overloaded")
    assert slow[0].status_code == 200
    (record,) = failing.decisions_for(slow[0].headers["x-request-id"])
    assert record["outcome"] == "ok"


def test_served_requests_are_in_the_spend_log_without_the_cost_tracker(failing: Failing) -> None:
    ids = [
        failing.chat("ok").headers["x-request-id"],
        failing.chat("ok", stream=True).headers["x-request-id"],
    ]

    def rows() -> list[dict[str, Any]]:
        page = httpx.get(f"{failing.gateway.url}/admin/spend/records", headers=ADMIN, params={"group": "ok"})
        return [row for row in page.json()["data"] if row["request_id"] in ids]

    def both_written() -> None:  # the spend log is written off the request path
        assert len(rows()) == 2, rows()

    eventually_sync(both_written)
    for row in rows():
        assert row["deployment_id"] == "ok" and row["input_tokens"] > 0 and row["output_tokens"] > 0
        assert row["cost_usd"] == 0.0  # no prices configured for the mock
    totals = httpx.get(f"{failing.gateway.url}/admin/spend", headers=ADMIN, params={"by": "group"}).json()
    assert totals["totals"]["ok"]["requests"] >= 2
    assert "broken" not in totals["totals"], "nothing answered: nothing spent"


def test_the_demo_shows_spend(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    with Gateway(config, tmp_path, {"ROUTEIQ_ADMIN_KEYS": ADMIN_KEY}) as demo:
        body = {"model": "auto", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
        assert httpx.post(f"{demo.url}/v1/chat/completions", json=body, timeout=30).status_code == 200

        def totals() -> dict[str, Any]:
            page = httpx.get(f"{demo.url}/admin/spend", headers=ADMIN, params={"by": "group"})
            return dict(page.json()["totals"])

        eventually_sync(lambda: bool(totals().get("auto")))
        spent = totals()["auto"]
        assert spent["requests"] == 1 and spent["input_tokens"] + spent["output_tokens"] > 0
