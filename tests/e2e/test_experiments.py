"""Experiments through the real server: 4 workers on one Redis, the official OpenAI SDK.

Assignment is the same whichever worker answers, counts per arm add up exactly to the requests
sent, feedback is taken only from the caller that made the request (anyone else gets the 404 an
unknown request id gets), bad definitions are 400s naming the field, and a promote switches the
group's strategy on every worker.
"""

from __future__ import annotations

import uuid
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

REDIS_URL = "redis://127.0.0.1:6379/8"  # a database of its own, emptied before the module
MASTER = "sk-exp-master"
ADMIN = {"authorization": "Bearer sk-exp-admin"}
WORKERS = 4


def config(api_base: str) -> dict[str, Any]:
    return {
        "model_list": [
            deployment("auto", "model-cheap", api_base, id="cheap", tier="budget", input_cost_per_token=1e-7),
            deployment("auto", "model-dear", api_base, id="dear", tier="premium", input_cost_per_token=1e-5),
            deployment("other", "model-other", api_base, id="other"),
            deployment("flaky", "flaky-fail500", api_base, id="flaky"),
        ],
        "router_settings": {"routing_strategy": "cost-based-routing", "fallbacks": [{"flaky": ["other"]}]},
    }


class Cluster:
    def __init__(self, gateway: Gateway) -> None:
        self.url = gateway.url

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", headers=ADMIN, timeout=20, **kwargs)

    def chat(self, key: str = MASTER, session: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"}
        if session is not None:
            headers["x-routeiq-session-id"] = session
        body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
        return httpx.post(f"{self.url}/v1/chat/completions", headers=headers, json=body, timeout=30)

    def applied_everywhere(self, subject: str, version: int) -> None:
        def check() -> None:
            view = self.admin("GET", "/admin/changes").json()
            assert len(view["instances"]) == WORKERS, view["instances"]
            applied = [report["applied"].get(subject, 0) for report in view["instances"].values()]
            assert min(applied) >= version, applied

        eventually_sync(check)

    def key(self, team: str) -> str:
        response = self.admin("POST", "/admin/keys", json={"name": team, "team": team})
        assert response.status_code == 201, response.text
        return str(response.json()["key"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp: Path = tmp_path_factory.mktemp("experiments")
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {"ROUTEIQ_REDIS_URL": REDIS_URL, "ROUTEIQ_ADMIN_KEYS": "sk-exp-admin", "ROUTEIQ_MASTER_KEY": MASTER}
    with MockUpstream() as upstream:
        gateway = Gateway(config(upstream.base_url), tmp, env, args=("--workers", str(WORKERS)))
        with gateway:
            gateway.wait_for_log("router built", count=WORKERS)
            yield Cluster(gateway)


def arms(*specs: tuple[str, str, float], **extra: Any) -> list[dict[str, Any]]:
    return [
        {"name": name, "strategy": strategy, "weight": weight, **extra} for name, strategy, weight in specs
    ]


TWO_ARMS = arms(("control", "cost-based-routing", 1.0), ("challenger", "simple-shuffle", 1.0))


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"group": "other", "arms": arms(("a", "simple-shuffle", 0.0), ("b", "least-busy", 0.0))}, "arms"),
        (
            {"group": "other", "arms": arms(("a", "simple-shuffle", 1.0), ("b", "no-such", 1.0))},
            "arms[1].strategy",
        ),
        ({"group": "other", "arms": arms(("a", "simple-shuffle", 1.0))}, "arms"),
        (
            {
                "group": "other",
                "arms": arms(("a", "simple-shuffle", 1), ("b", "least-busy", 1), group="auto"),
            },
            "arms[0].group",
        ),
        ({"group": "nowhere", "arms": TWO_ARMS}, "group"),
        ({"group": "other", "arms": TWO_ARMS, "primary": "happiness"}, "primary"),
    ],
)
def test_bad_definitions_are_400_naming_the_field(cluster: Cluster, body: dict[str, Any], param: str) -> None:
    response = cluster.admin("POST", "/admin/experiments", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_a_group_takes_one_experiment_at_a_time(cluster: Cluster) -> None:
    first = cluster.admin("POST", "/admin/experiments", json={"group": "other", "arms": TWO_ARMS})
    assert first.status_code == 201, first.text
    second = cluster.admin("POST", "/admin/experiments", json={"group": "other", "arms": TWO_ARMS})
    assert second.status_code == 400 and second.json()["error"]["param"] == "group"
    deleted = cluster.admin("DELETE", f"/admin/experiments/{first.json()['experiment']['id']}")
    assert deleted.status_code == 200, deleted.text


@pytest.fixture(scope="module")
def experiment(cluster: Cluster) -> dict[str, Any]:
    body = {
        "group": "auto",
        "name": "cheap vs shuffle",
        "arms": [*TWO_ARMS, {"name": "watcher", "strategy": "least-busy", "weight": 0, "shadow": True}],
        "primary": "feedback_score",
    }
    response = cluster.admin("POST", "/admin/experiments", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    cluster.applied_everywhere("experiments", created["version"])
    return created["experiment"]


def test_assignment_is_sticky_on_every_worker_and_counts_add_up(
    cluster: Cluster, experiment: dict[str, Any]
) -> None:
    sessions = [f"s-{uuid.uuid4().hex[:8]}" for _ in range(24)]
    work = [session for session in sessions for _ in range(5)]  # 120 requests, spread over workers
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda session: (session, cluster.chat(session=session)), work))
    seen: dict[str, set[str]] = {}
    for session, response in responses:
        assert response.status_code == 200, response.text
        assert response.headers["x-routeiq-experiment"] == experiment["id"]
        seen.setdefault(session, set()).add(response.headers["x-routeiq-arm"])
    assert all(len(arms_seen) == 1 for arms_seen in seen.values()), seen  # sticky per unit
    assert {arm for arms_seen in seen.values() for arm in arms_seen} == {"control", "challenger"}
    expected = {arm: 5 * sum(1 for s in seen.values() if arm in s) for arm in ("control", "challenger")}

    def counted() -> dict[str, Any]:
        detail = cluster.admin("GET", f"/admin/experiments/{experiment['id']}").json()
        rows = {row["name"]: row for row in detail["arms"]}
        assert {name: rows[name]["outcomes"]["requests"] for name in expected} == expected
        assert rows["watcher"]["shadow_decisions"]["decisions"] == len(work)
        return detail

    detail = eventually_sync(counted)
    rows = {row["name"]: row for row in detail["arms"]}
    assert rows["control"]["outcomes"]["tiers"] == {"budget": expected["control"]}  # cost-based: cheap
    assert rows["watcher"]["outcomes"]["requests"] == 0  # a shadow arm never serves
    assert detail["verdict"]["state"] == "not_enough_data"
    assert detail["verdict"]["needed_samples"]["control"] >= 100


def test_feedback_only_from_the_caller_that_made_the_request(
    cluster: Cluster, experiment: dict[str, Any]
) -> None:
    mine = openai.OpenAI(base_url=f"{cluster.url}/v1", api_key=cluster.key("team-a"), max_retries=0)
    theirs = openai.OpenAI(base_url=f"{cluster.url}/v1", api_key=cluster.key("team-b"), max_retries=0)
    raw = mine.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "rate me"}]
    )
    request_id, arm = raw.headers["x-request-id"], raw.headers["x-routeiq-arm"]

    def send(client: openai.OpenAI, body: dict[str, Any]) -> httpx.Response:
        response: httpx.Response = client.post("/routeiq/feedback", body=body, cast_to=httpx.Response)
        return response

    def accepted() -> httpx.Response:
        # The decision record is written in batches: until it is, the request is unknown here too.
        try:
            return send(mine, {"request_id": request_id, "score": "down"})
        except openai.NotFoundError as error:
            raise AssertionError("decision record not written yet") from error

    first = eventually_sync(accepted)
    assert first.json() == {
        "request_id": request_id,
        "score": 0.0,
        "replaced": False,
        "experiment": experiment["id"],
        "arm": arm,
    }
    record = cluster.admin("GET", f"/admin/routing-decisions/{request_id}").json()
    assert (record["experiment"], record["arm"]) == (experiment["id"], arm)
    with pytest.raises(openai.NotFoundError) as someone_elses:
        send(theirs, {"request_id": request_id, "score": 1})
    with pytest.raises(openai.NotFoundError) as unknown:
        send(mine, {"request_id": f"never-{uuid.uuid4().hex}", "score": 1})
    assert someone_elses.value.body == unknown.value.body  # existence is never revealed

    again = send(mine, {"request_id": request_id, "score": 0.75, "comment": "on second thought"})
    assert again.json()["replaced"] is True

    def corrected() -> None:  # replaced, not counted twice
        detail = cluster.admin("GET", f"/admin/experiments/{experiment['id']}").json()
        row = next(row for row in detail["arms"] if row["name"] == arm)
        assert row["feedback"] == {"n": 1, "mean": 0.75}

    eventually_sync(corrected)
    bad = httpx.post(
        f"{cluster.url}/v1/routeiq/feedback",
        headers={"authorization": f"Bearer {MASTER}"},
        json={"request_id": request_id, "score": 1.5},
        timeout=10,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "score"


def test_weights_and_pause_apply_everywhere(cluster: Cluster, experiment: dict[str, Any]) -> None:
    path = f"/admin/experiments/{experiment['id']}"
    bad = cluster.admin("PATCH", path, json={"weights": {"control": 0, "challenger": 0}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "weights"
    paused = cluster.admin("PATCH", path, json={"state": "paused"})
    assert paused.status_code == 200, paused.text
    cluster.applied_everywhere("experiments", paused.json()["version"])
    assert all("x-routeiq-arm" not in cluster.chat().headers for _ in range(8))
    resumed = cluster.admin("PATCH", path, json={"state": "running", "weights": {"challenger": 3}})
    assert resumed.status_code == 200, resumed.text
    cluster.applied_everywhere("experiments", resumed.json()["version"])


def test_requests_a_fallback_served_are_reported_apart(cluster: Cluster) -> None:
    created = cluster.admin("POST", "/admin/experiments", json={"group": "flaky", "arms": TWO_ARMS})
    assert created.status_code == 201, created.text
    experiment_id = created.json()["experiment"]["id"]
    cluster.applied_everywhere("experiments", created.json()["version"])
    body = {"model": "flaky", "messages": [{"role": "user", "content": "hello"}]}
    for _ in range(6):
        response = httpx.post(
            f"{cluster.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {MASTER}"},
            json=body,
            timeout=30,
        )
        assert response.status_code == 200 and response.headers["x-routeiq-group"] == "other", response.text
        assert response.headers["x-routeiq-experiment"] == experiment_id

    def counted() -> None:
        rows = cluster.admin("GET", f"/admin/experiments/{experiment_id}").json()["arms"]
        assert sum(row["outcomes"]["requests"] for row in rows) == 6
        assert sum(row["fallback"]["requests"] for row in rows) == 6  # each flagged as a fallback's
        assert sum(row["outcomes"]["errors"] for row in rows) == 0

    eventually_sync(counted)
    assert cluster.admin("DELETE", f"/admin/experiments/{experiment_id}").status_code == 200


def test_promote_switches_every_worker(cluster: Cluster, experiment: dict[str, Any]) -> None:
    response = cluster.admin("POST", f"/admin/experiments/{experiment['id']}/promote", json={})
    assert response.status_code == 400 and response.json()["error"]["param"] == "arm"  # no winner yet
    response = cluster.admin(
        "POST", f"/admin/experiments/{experiment['id']}/promote", json={"arm": "challenger"}
    )
    assert response.status_code == 200, response.text
    promoted = response.json()
    assert (
        promoted["experiment"]["state"] == "stopped"
        and promoted["experiment"]["promoted_arm"] == "challenger"
    )
    cluster.applied_everywhere("routing.strategies", promoted["strategy_version"])
    cluster.applied_everywhere("experiments", promoted["version"])
    for _ in range(12):  # whichever worker answers
        response = cluster.chat()
        assert response.headers["x-routeiq-strategy"] == "simple-shuffle"
        assert "x-routeiq-experiment" not in response.headers
    listed = cluster.admin("GET", "/admin/experiments").json()["data"]
    assert [e["state"] for e in listed if e["id"] == experiment["id"]] == ["stopped"]
