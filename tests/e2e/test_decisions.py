"""The decision store through the real server: every model request leaves exactly one record (served,
failed over, refused), read back through ``/admin/routing-decisions`` with filters and cursor pages,
under the admin key only, with no prompt text (``log_prompts`` is off). Every test runs on both
stores: one worker on SQLite, and two workers on PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.databases import postgres_database
from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

MASTER = "sk-decisions-master"
ADMIN_KEY = "sk-decisions-admin"
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
PROMPT = "a prompt that must never be stored"
REDIS_URL = "redis://127.0.0.1:6379/8"


def priced(entry: dict[str, Any], per_token: float) -> dict[str, Any]:
    entry["model_info"] |= {"input_cost_per_token": per_token, "output_cost_per_token": per_token}
    return entry


def config(api_base: str, decision_log: Path) -> dict[str, Any]:
    return {
        "model_list": [
            deployment("auto", "mock-alpha", api_base, id="alpha", tier="budget"),
            deployment("primary", "primary-fail500", api_base, id="primary-down"),
            deployment("backup", "mock-backup", api_base, id="backup"),
            priced(deployment("cheap", "mock-cheap", api_base, id="cheap-low"), 1e-6),
            priced(deployment("cheap", "mock-dear", api_base, id="cheap-high"), 1e-5),
        ],
        "router_settings": {
            "routing_strategy": "simple-shuffle",
            "group_strategies": {"cheap": "cost-based-routing"},
            "fallbacks": [{"primary": ["backup"]}],
        },
        "routeiq": {"decision_log": str(decision_log)},
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql-redis"])
def gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One worker on the embedded SQLite store and in-process state; two workers sharing PostgreSQL
    and Redis (each writes its own records into the one table)."""
    tmp = tmp_path_factory.mktemp("decisions")
    env = {"ROUTEIQ_MASTER_KEY": MASTER, "ROUTEIQ_ADMIN_KEYS": ADMIN_KEY}
    with contextlib.ExitStack() as stack:
        args: tuple[str, ...] = ()
        if request.param == "postgresql-redis":
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()
            env |= {
                "ROUTEIQ_REDIS_URL": REDIS_URL,
                "ROUTEIQ_DATABASE_URL": stack.enter_context(postgres_database()),
            }
            args = ("--workers", "2")
        upstream = stack.enter_context(MockUpstream())
        gw = stack.enter_context(Gateway(config(upstream.base_url, tmp / "decisions.log"), tmp, env, args))
        if args:
            gw.wait_for_log("router built", 2)
        yield gw


def chat(gateway: Gateway, model: str = "auto", key: str = MASTER, request_id: str | None = None) -> str:
    """Send one chat request; returns its request id."""
    request_id = request_id or f"dec-{uuid.uuid4().hex}"
    httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}", "x-request-id": request_id},
        json={"model": model, "messages": [{"role": "user", "content": PROMPT}]},
        timeout=20,
    )
    return request_id


def decisions(gateway: Gateway, **params: Any) -> httpx.Response:
    return httpx.get(f"{gateway.url}/admin/routing-decisions", headers=ADMIN, params=params, timeout=10)


def walk(gateway: Gateway, **params: Any) -> list[dict[str, Any]]:
    """Every record the filters match, page by page."""
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = decisions(gateway, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        page = response.json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def recorded(gateway: Gateway, request_ids: list[str], since: float) -> list[dict[str, Any]]:
    """The records of ``request_ids``, once all of them are written (they are batched)."""

    def check() -> list[dict[str, Any]]:
        mine = [
            record for record in walk(gateway, since=since, limit=500) if record["request_id"] in request_ids
        ]
        assert {record["request_id"] for record in mine} == set(request_ids)
        return mine

    return eventually_sync(check)


def one(gateway: Gateway, request_id: str) -> dict[str, Any]:
    response = httpx.get(f"{gateway.url}/admin/routing-decisions/{request_id}", headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def test_each_request_leaves_exactly_one_record_and_one_log_line(gateway: Gateway) -> None:
    since = time.time() - 1
    ids = [chat(gateway) for _ in range(6)] + [chat(gateway, key="sk-wrong"), chat(gateway, model="nope")]
    mine = recorded(gateway, ids, since)
    assert sorted(record["request_id"] for record in mine) == sorted(ids)  # none twice
    served = [record for record in mine if record["outcome"] == "served"]
    assert len(served) == 6
    for record in served:
        assert (record["group"], record["deployment"], record["served_model"]) == (
            "auto",
            "alpha",
            "mock-alpha",
        )
        assert (
            record["status"] == 200 and record["strategy"] == "simple-shuffle" and record["tier"] == "budget"
        )
        assert record["input_tokens"] > 0 and record["output_tokens"] > 0 and record["latency_ms"] > 0
        assert record["candidates"] == [
            {"deployment": "alpha", "model": "mock-alpha", "tier": "budget", "score": None, "chosen": True}
        ]
        assert record["routing_overhead_ms"] is not None and record["attempts"] == 1
        assert record["experiment"] is None and record["arm"] is None
    # The decision log's lines (the stderr/file sink) are still written, once per request too.
    log = Path(gateway.config_path.parent / "decisions.log")
    eventually_sync(lambda: sum(log.read_text().count(request_id) for request_id in ids) == len(ids))


def test_a_refused_request_is_recorded(gateway: Gateway) -> None:
    since = time.time() - 1
    request_id = chat(gateway, key="sk-wrong", request_id=f"client/{uuid.uuid4().hex}")  # ids may hold "/"
    (record,) = recorded(gateway, [request_id], since)
    assert (record["outcome"], record["status"], record["attempts"]) == ("refused", 401, 0)
    assert record["error_code"] and record["deployment"] is None and record["key_id"] is None
    assert one(gateway, request_id) == record


def test_a_fallback_shows_every_attempt_and_the_final_outcome(gateway: Gateway) -> None:
    since = time.time() - 1
    request_id = chat(gateway, model="primary")
    (record,) = recorded(gateway, [request_id], since)
    assert (record["outcome"], record["status"]) == ("served", 200)
    assert (record["requested_group"], record["group"], record["deployment"]) == (
        "primary",
        "backup",
        "backup",
    )
    assert record["fallbacks"] == ["backup"] and record["attempts"] == 2
    down, up = record["attempted"]
    assert (down["deployment"], down["group"]) == ("primary-down", "primary") and down["status"] >= 500
    assert down["error_code"] and (up["deployment"], up["error_code"]) == ("backup", None)
    assert record["cost_usd"] >= 0 and record["output_tokens"] > 0


def test_candidates_carry_the_strategys_scores_and_filters_narrow(gateway: Gateway) -> None:
    key = httpx.post(f"{gateway.url}/admin/keys", headers=ADMIN, json={"team": "dec-team"}, timeout=10)
    assert key.status_code == 201, key.text
    since = time.time() - 1
    request_id = chat(gateway, model="cheap", key=key.json()["key"])
    (record,) = recorded(gateway, [request_id], since)
    assert record["strategy"] == "cost-based-routing" and record["deployment"] == "cheap-low"
    scores = {candidate["deployment"]: candidate["score"] for candidate in record["candidates"]}
    assert scores["cheap-low"] < scores["cheap-high"]
    assert (record["key_id"], record["team"]) == (key.json()["key_id"], "dec-team")

    def only(**filters: Any) -> list[str]:
        return [r["request_id"] for r in walk(gateway, since=since, **filters)]

    assert only(key_id=key.json()["key_id"]) == [request_id]
    assert only(team="dec-team") == [request_id]
    assert request_id in only(group="cheap", strategy="cost-based-routing", model="mock-cheap")
    assert only(request_id=request_id) == [request_id]
    assert request_id not in only(outcome="refused") + only(group="auto") + only(until=since)


def test_pages_walk_every_record_once_newest_first(gateway: Gateway) -> None:
    since = time.time() - 1
    ids = [chat(gateway) for _ in range(7)]
    recorded(gateway, ids, since)
    paged = walk(gateway, since=since, limit=2)
    whole = decisions(gateway, since=since, limit=500).json()
    assert whole["next_cursor"] is None
    assert [r["request_id"] for r in paged] == [r["request_id"] for r in whole["data"]]
    assert len(paged) == len({r["request_id"] for r in paged}) >= 7
    times = [r["time"] for r in paged]
    assert times == sorted(times, reverse=True)


def test_no_prompt_text_is_stored_without_log_prompts(gateway: Gateway) -> None:
    since = time.time() - 1
    recorded(gateway, [chat(gateway)], since)
    response = decisions(gateway, limit=500)
    assert PROMPT not in response.text
    assert all(record["prompt"] is None for record in response.json()["data"])


def test_the_admin_key_is_required(gateway: Gateway) -> None:
    for path in ("/admin/routing-decisions", "/admin/routing-decisions/anything"):
        for headers in ({}, {"authorization": f"Bearer {MASTER}"}, {"authorization": "Bearer sk-wrong"}):
            response = httpx.get(f"{gateway.url}{path}", headers=headers, timeout=10)
            assert response.status_code == 401, response.text
            assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"outcome": "exploded"}, "outcome"),
        ({"since": "yesterday"}, "since"),
        ({"since": "nan"}, "since"),
        ({"since": 10, "until": 5}, "until"),
        ({"group": "x" * 300}, "group"),
        ({"team": "a\x00b"}, "team"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    gateway: Gateway, params: dict[str, Any], param: str
) -> None:
    response = decisions(gateway, **params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert response.headers["x-request-id"]


def test_an_unknown_request_id_is_a_404(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.url}/admin/routing-decisions/no-such-request", headers=ADMIN, timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "decision_not_found"


def test_the_schema_and_metrics_show_the_decision_store(gateway: Gateway) -> None:
    schema = httpx.get(f"{gateway.url}/openapi.json", timeout=10).json()
    assert "Decision" in schema["components"]["schemas"] and "DecisionPage" in schema["components"]["schemas"]
    assert "/admin/routing-decisions/{request_id}" in schema["paths"]
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert 'routeiq_log_records_dropped_total{log="decisions"} 0.0' in metrics
