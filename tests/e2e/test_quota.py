"""Quotas and budgets through the real server: limits from YAML (teams, users, groups) and from
virtual keys (``/admin/keys``), the 429 the OpenAI SDK understands, ``x-ratelimit-*`` on success,
settling to real usage (streams included), budgets, and exactly N of 3N concurrent requests through
four workers sharing Redis.

Counting tests use hour/day windows so that no window rolls over in the middle of a test.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream
from tests.support.redis_store import RedisServer
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.usefixtures("clear_of_hour_rollover")  # counts calls in hour windows

MASTER = "sk-quota-master"
ADMIN_KEY = "sk-quota-admin"
REDIS_DB_URL = "redis://127.0.0.1:6379/4"  # a database of its own, emptied before each test using it
PRICE = 0.001  # USD per token, input and output, on the "priced" group
CUT_DELAY_MS = 300
RESET = re.compile(r"^(\d+h)?(\d+m)?\d+s$|^\d+ms$")


def hourly(metric: str, amount: float, window: str = "hour") -> dict[str, Any]:
    return {"metric": metric, "window": window, "limit": amount}


def quota_config(api_base: str) -> dict[str, Any]:
    priced = deployment("priced", "mock-priced", api_base, id="priced")
    priced["model_info"] = {"id": "priced", "input_cost_per_token": PRICE, "output_cost_per_token": PRICE}
    # Streams slowly enough for a client to leave between the last content chunk and the usage chunk.
    slow = deployment("slow-priced", f"mock-slow-chunkdelay{CUT_DELAY_MS}ms", api_base, id="slow-priced")
    slow["model_info"] = {"id": "slow-priced", "input_cost_per_token": PRICE, "output_cost_per_token": PRICE}
    return {
        "model_list": [
            deployment("auto", "mock-alpha", api_base, id="alpha"),
            deployment("capped", "mock-capped", api_base, id="capped"),
            deployment("team-group", "mock-team", api_base, id="team-group"),
            deployment("rejecting", "gpt-fail400", api_base, id="rejecting"),
            priced,
            slow,
            deployment("embed", "mock-embed", api_base, id="embed"),
        ],
        "router_settings": {"num_retries": 0},
        "routeiq": {
            "quotas": {
                "teams": {"ml": [hourly("requests", 2)]},
                "users": {"ada": [hourly("output_tokens", 300, "day")]},
                "groups": {"capped": [hourly("requests", 3)]},
                "default_max_tokens": 200,
            }
        },
    }


class Client:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def chat(self, key: str, model: str = "auto", content: str = "hello", **extra: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
        return httpx.post(
            f"{self.gateway.url}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        )

    def new_key(self, **fields: Any) -> str:
        created = httpx.post(
            f"{self.gateway.url}/admin/keys",
            json=fields,
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10,
        )
        assert created.status_code in (200, 201), created.text
        return str(created.json()["key"])


@pytest.fixture(scope="module", params=["passthrough", "litellm"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    env = {
        "ROUTEIQ_MASTER_KEY": MASTER,
        "ROUTEIQ_ADMIN_KEYS": ADMIN_KEY,
        "ROUTEIQ_PASSTHROUGH": "auto" if request.param == "passthrough" else "off",
    }
    tmp: Path = tmp_path_factory.mktemp(f"quota-{request.param}")
    with MockUpstream() as upstream, Gateway(quota_config(upstream.base_url), tmp, env) as gateway:
        yield Client(gateway)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def cost_of(response: httpx.Response) -> float:
    usage = response.json()["usage"]
    return float(usage["prompt_tokens"] * PRICE + usage["completion_tokens"] * PRICE)


# --- limits from YAML ---------------------------------------------------------------------------


def test_group_limit_refuses_with_openai_429_and_ratelimit_headers(client: Client) -> None:
    remaining = []
    for _ in range(3):
        response = client.chat(MASTER, "capped")
        assert response.status_code == 200, response.text
        assert response.headers["x-ratelimit-limit-requests"] == "3"
        assert RESET.match(response.headers["x-ratelimit-reset-requests"])
        assert "x-request-id" in response.headers
        remaining.append(response.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]

    refused = client.chat(MASTER, "capped")
    assert refused.status_code == 429
    error = error_of(refused)
    assert error["code"] == "requests_limit_exceeded" and error["type"] == "rate_limit_error"
    assert "group 'capped': 3 requests per hour" in error["message"]
    headers = refused.headers
    assert headers["x-ratelimit-limit-requests"] == "3"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert RESET.match(headers["x-ratelimit-reset-requests"])
    assert 1 <= int(headers["retry-after"]) <= 120
    assert 1 <= int(headers["retry-after-ms"]) <= 120_000
    assert "x-should-retry" not in headers
    assert "x-request-id" in headers

    # The official SDK maps it to RateLimitError and keeps the code.
    sdk = openai.OpenAI(base_url=f"{client.gateway.url}/v1", api_key=MASTER, max_retries=0, timeout=20)
    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(model="capped", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.code == "requests_limit_exceeded"

    # Other groups are not limited, and callers without limits get no x-ratelimit headers.
    free = client.chat(MASTER, "auto")
    assert free.status_code == 200
    assert not [name for name in free.headers if name.startswith("x-ratelimit-")]


def test_team_limit_is_shared_by_the_teams_keys(client: Client) -> None:
    first, second = client.new_key(team="ml"), client.new_key(team="ml")
    assert client.chat(first, "team-group").status_code == 200
    answered = client.chat(second, "team-group")
    assert answered.status_code == 200
    assert answered.headers["x-ratelimit-remaining-requests"] == "0"
    refused = client.chat(first, "team-group")
    assert refused.status_code == 429
    assert "team 'ml'" in error_of(refused)["message"]
    # The limit comes from the credential, never from what the client claims.
    outsider = client.new_key(team="other")
    claimed = client.chat(outsider, "team-group", user="ada")
    claimed_too = httpx.post(
        f"{client.gateway.url}/v1/chat/completions",
        json={"model": "team-group", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": f"Bearer {outsider}", "x-team-id": "ml"},
        timeout=30,
    )
    assert claimed.status_code == claimed_too.status_code == 200
    assert not [name for name in claimed_too.headers if name.startswith("x-ratelimit-")]


def test_user_output_token_limit_counts_real_usage(client: Client) -> None:
    key = client.new_key(user="ada")
    # 200 output tokens reserved (default_max_tokens), about 6 really produced and settled.
    for _ in range(3):
        response = client.chat(key, "auto")
        assert response.status_code == 200, response.text
    used = 3 * response.json()["usage"]["completion_tokens"]
    tight = client.chat(key, "auto", max_tokens=250)
    assert tight.status_code == 200
    assert tight.headers["x-ratelimit-remaining-tokens"] == str(300 - used - 250)
    too_big = client.chat(key, "auto", max_tokens=301)
    assert too_big.status_code == 429
    assert error_of(too_big)["code"] == "tokens_limit_exceeded"
    assert too_big.headers["x-should-retry"] == "false"  # this request can never fit


# --- limits on virtual keys ---------------------------------------------------------------------


def test_key_rpm_limit(client: Client) -> None:
    key = client.new_key(rpm_limit=2)
    if 60 - time.time() % 60 < 5:  # do not straddle a minute boundary
        time.sleep(60 - time.time() % 60 + 0.2)
    assert [client.chat(key).status_code for _ in range(2)] == [200, 200]
    refused = client.chat(key)
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "requests_limit_exceeded"
    assert "per minute" in error_of(refused)["message"]
    assert refused.headers["x-ratelimit-limit-requests"] == "2"
    assert int(refused.headers["retry-after"]) <= 60


def test_stream_settles_to_real_usage(client: Client) -> None:
    key = client.new_key(limits=[hourly("total_tokens", 10_000, "day")])
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "hello there"}],  # 11 chars: 3 tokens estimated
        "max_tokens": 500,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"authorization": f"Bearer {key}"}
    usage: dict[str, Any] | None = None
    with httpx.stream(
        "POST", f"{client.gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["x-ratelimit-limit-tokens"] == "10000"
        assert streamed.headers["x-ratelimit-remaining-tokens"] == str(10_000 - 503)
        for line in streamed.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[len("data: ") :])
                usage = chunk.get("usage") or usage
    assert usage is not None and usage["total_tokens"] > 0
    after = client.chat(key, content="hello there", max_tokens=100)
    assert after.status_code == 200
    assert after.headers["x-ratelimit-remaining-tokens"] == str(10_000 - usage["total_tokens"] - 103)


def test_failed_call_gives_its_tokens_back(client: Client) -> None:
    key = client.new_key(limits=[hourly("total_tokens", 5000, "day"), hourly("requests", 100)])
    failed = client.chat(key, "rejecting", content="abcd", max_tokens=1000)
    assert failed.status_code == 400
    after = client.chat(key, content="abcd", max_tokens=100)
    assert after.status_code == 200
    assert after.headers["x-ratelimit-remaining-tokens"] == str(5000 - 101)
    assert after.headers["x-ratelimit-remaining-requests"] == "98"  # the failed request still counts


def test_spent_budget_refuses_and_says_not_to_retry(client: Client) -> None:
    key = client.new_key(budget_usd=0.03)
    # Reserved before each call: its most expensive outcome, (2 prompt + 6 output tokens) * PRICE.
    estimate = (2 + 6) * PRICE
    spent = 0.0
    for _ in range(20):
        response = client.chat(key, "priced", max_tokens=6)
        if response.status_code != 200:
            break
        expected = f"{0.03 - spent - estimate:.6f}".rstrip("0").rstrip(".")
        assert response.headers["x-ratelimit-remaining-budget"] == expected
        assert response.headers["x-ratelimit-limit-budget"] == "0.03"
        spent += cost_of(response)
    # Refused as soon as the next call might not fit: never over the budget.
    assert spent <= 0.03 < spent + estimate
    assert response.status_code == 429
    error = error_of(response)
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
    assert "left, less than this request may cost" in error["message"]
    assert response.headers["x-should-retry"] == "false"
    assert "retry-after" in response.headers

    sdk = openai.OpenAI(base_url=f"{client.gateway.url}/v1", api_key=key, max_retries=2, timeout=20)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(
            model="priced", messages=[{"role": "user", "content": "hi"}], max_tokens=6
        )
    assert time.monotonic() - started < 1.0  # x-should-retry: false, so the SDK did not wait to retry


def test_a_stream_cut_short_is_charged_for_what_it_streamed(client: Client) -> None:
    """The client reads every content chunk and leaves before the usage chunk: the call is still
    charged, by the text it streamed (not the whole reservation, and not nothing)."""
    key = client.new_key(limits=[hourly("total_tokens", 100_000, "day"), hourly("spend_usd", 10.0, "day")])
    body = {
        "model": "slow-priced",
        "messages": [{"role": "user", "content": "hello"}],  # 2 tokens by the estimate, 1 by the mock
        "max_tokens": 500,
        "stream": True,
    }
    headers = {"authorization": f"Bearer {key}"}
    streamed_texts = []
    for _ in range(10):
        text = ""
        with httpx.stream(
            "POST", f"{client.gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=30
        ) as streamed:
            assert streamed.status_code == 200
            for line in streamed.iter_lines():
                if not line.startswith("data: {"):
                    continue
                choice = json.loads(line[len("data: ") :])["choices"][0]
                text += choice["delta"].get("content") or ""
                if choice.get("finish_reason"):
                    break  # the whole answer arrived; leave before the usage chunk (CUT_DELAY_MS later)
        streamed_texts.append(text)
    assert all(streamed_texts)
    after = client.chat(key, "slow-priced", content="hello", max_tokens=100)  # reserves 102 tokens
    assert after.status_code == 200
    tokens_used = 100_000 - 102 - int(after.headers["x-ratelimit-remaining-tokens"])
    spend_used = 10.0 - 102 * PRICE - float(after.headers["x-ratelimit-remaining-budget"])
    # At least what the mock upstream would have reported (its tokens are words), at most what the
    # gateway counts from the streamed characters (4 a token); far below the 502 tokens reserved.
    lowest = sum(1 + len(text.split()) for text in streamed_texts)
    highest = sum(2 + -(-len(text) // 4) for text in streamed_texts)
    assert lowest <= tokens_used <= highest < 10 * 502
    assert lowest * PRICE - 1e-6 <= spend_used <= highest * PRICE + 1e-6

    # The spend log agrees: one row per cut stream, with its tokens and cost (written off the
    # request path, so wait for the batch).
    def rows() -> list[dict[str, Any]]:
        page = httpx.get(
            f"{client.gateway.url}/admin/spend/records",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            params={"group": "slow-priced", "limit": 1000},
            timeout=10,
        )
        assert page.status_code == 200, page.text
        return list(page.json()["data"])

    def all_charged() -> list[dict[str, Any]]:
        charged = rows()
        assert len(charged) >= 11, charged
        return charged

    charged = eventually_sync(all_charged, timeout=15)
    assert len(charged) == 11  # the 10 cut streams and the call after them
    assert all(row["input_tokens"] > 0 and row["output_tokens"] > 0 for row in charged), charged
    assert all(row["cost_usd"] > 0 for row in charged), charged


# --- budgets under concurrency, across workers sharing Redis ---------------------------------------

BUDGET_USD = 0.10
CALL_USD = 0.02


def budget_config(api_base: str) -> dict[str, Any]:
    """Each call costs exactly CALL_USD, and its estimate is exactly that too: the mock answers
    "mock reply from mock-budget: hi" (5 completion tokens), max_tokens is 5, prompts are free."""
    price = {"input_cost_per_token": 0.0, "output_cost_per_token": CALL_USD / 5}
    entries = []
    for group in ("budget-plain", "budget-stream"):
        entry = deployment(group, "mock-budget", api_base, id=group)
        entry["model_info"] = {"id": group, **price}
        entries.append(entry)
    limits = [hourly("spend_usd", BUDGET_USD, "day")]
    return {
        "model_list": entries,
        "router_settings": {"num_retries": 0},
        "routeiq": {"quotas": {"groups": {"budget-plain": limits, "budget-stream": limits}}},
    }


def completion_tokens_of_stream(response: httpx.Response) -> int | None:
    usage = None
    for line in response.iter_lines():
        if line.startswith("data: {"):
            usage = json.loads(line[len("data: ") :]).get("usage") or usage
    return None if usage is None else int(usage["completion_tokens"])


@pytest.mark.parametrize("executor", ["passthrough", "litellm"])
def test_concurrent_calls_cannot_overspend_a_budget(executor: str, tmp_path: Path) -> None:
    """$0.10 at $0.02 a call, 100 calls at once through two workers sharing Redis (streamed and
    not): the admitted calls spend no more than the budget plus one call's estimate."""
    with RedisServer(tmp_path) as own_redis, MockUpstream() as upstream:
        env = {
            "ROUTEIQ_REDIS_URL": own_redis.url,
            "ROUTEIQ_MASTER_KEY": MASTER,
            "ROUTEIQ_PASSTHROUGH": "auto" if executor == "passthrough" else "off",
            # Shared counting, not timeouts, is tested here: see test_four_workers_let_exactly_n_through.
            "ROUTEIQ_REDIS_TIMEOUT_SECONDS": "10",
        }
        with Gateway(budget_config(upstream.base_url), tmp_path, env, args=("--workers", "2")) as gateway:
            gateway.wait_for_log("router built", count=2)

            def plain(_: int) -> tuple[int, int | None]:
                response = Client(gateway).chat(MASTER, "budget-plain", content="hi", max_tokens=5)
                ok = response.status_code == 200
                return response.status_code, response.json()["usage"]["completion_tokens"] if ok else None

            def streamed(_: int) -> tuple[int, int | None]:
                body = {
                    "model": "budget-stream",
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 5,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                }
                with httpx.stream(
                    "POST",
                    f"{gateway.url}/v1/chat/completions",
                    json=body,
                    headers={"authorization": f"Bearer {MASTER}"},
                    timeout=60,
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        return response.status_code, None
                    return 200, completion_tokens_of_stream(response)

            for call in (plain, streamed):
                with ThreadPoolExecutor(max_workers=100) as pool:
                    outcomes = list(pool.map(call, range(100)))
                admitted = [tokens for status, tokens in outcomes if status == 200]
                refused = [status for status, _ in outcomes if status != 200]
                assert set(refused) == {429}, outcomes
                assert all(tokens is not None for tokens in admitted)
                spent = sum(tokens or 0 for tokens in admitted) * CALL_USD / 5
                assert spent <= BUDGET_USD + CALL_USD + 1e-9, (call.__name__, len(admitted))
                assert len(admitted) >= BUDGET_USD / CALL_USD - 1, (call.__name__, len(admitted))
            assert "shared state unavailable" not in gateway.log()


# --- across workers, and without Redis ------------------------------------------------------------


def test_four_workers_let_exactly_n_through(tmp_path: Path) -> None:
    limit = 20  # 100 concurrent calls on a 20-per-hour limit: leases never leave any unused
    redis.Redis.from_url(REDIS_DB_URL).flushdb()
    # Exact counting, not timeouts, is tested here: on a loaded 2-core machine a worker's event loop
    # can stall past the default 0.5 s, and quotas failing open would then count per process.
    env = {
        "ROUTEIQ_REDIS_URL": REDIS_DB_URL,
        "ROUTEIQ_MASTER_KEY": MASTER,
        "ROUTEIQ_REDIS_TIMEOUT_SECONDS": "10",
    }
    with MockUpstream() as upstream:
        config = {
            "model_list": [deployment("auto", "mock-alpha", upstream.base_url, id="alpha")],
            "routeiq": {"quotas": {"groups": {"auto": [hourly("requests", limit)]}}},
        }
        with Gateway(config, tmp_path, env, args=("--workers", "4")) as gateway:
            gateway.wait_for_log("router built", count=4)
            client = Client(gateway)
            with ThreadPoolExecutor(max_workers=100) as pool:
                responses = list(pool.map(lambda _: client.chat(MASTER), range(100)))
            assert "shared state unavailable" not in gateway.log()
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * limit + [429] * (100 - limit)
    assert {error_of(r)["code"] for r in responses if r.status_code == 429} == {"requests_limit_exceeded"}


def test_fail_closed_quotas_refuse_with_503_while_redis_is_away(tmp_path: Path) -> None:
    redis.Redis.from_url(REDIS_DB_URL).flushdb()
    with MockUpstream() as upstream, TcpProxy("127.0.0.1", 6379) as proxy:
        env = {"ROUTEIQ_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/4", "ROUTEIQ_MASTER_KEY": MASTER}
        config = {
            "model_list": [
                deployment("capped", "mock-capped", upstream.base_url, id="capped"),
                deployment("auto", "mock-alpha", upstream.base_url, id="alpha"),
            ],
            "routeiq": {
                "quotas": {"groups": {"capped": [hourly("requests", 100)]}},
                "state_failure_mode": {"quotas": "closed"},
            },
        }
        with Gateway(config, tmp_path, env) as gateway:
            client = Client(gateway)
            assert client.chat(MASTER, "capped").status_code == 200
            proxy.cut()
            # Units the first call leased are this process's, reserved in Redis: they still serve, and
            # nothing else does. Every call that needs the shared counter is refused. (A refusal may
            # come before the lease is used up: a flush that was handing the spare back when the
            # connection went gives it back to the process when it fails.)
            answers = [client.chat(MASTER, "capped") for _ in range(20)]
            statuses = [answer.status_code for answer in answers]
            assert statuses.count(200) <= 100 // 8, statuses
            assert set(statuses) <= {200, 503} and 503 in statuses, statuses
            refusals = [answer for answer in answers if answer.status_code == 503]
            assert {error_of(refused)["code"] for refused in refusals} == {"quota_unavailable"}
            assert all(int(refused.headers["retry-after"]) >= 1 for refused in refusals)
            assert client.chat(MASTER, "auto").status_code == 200  # what no quota meters still flows
            proxy.restore()
            eventually_sync(
                lambda: client.chat(MASTER, "capped").status_code == 200, timeout=15, interval=0.3
            )
