"""Virtual keys and the audit trail, through the real server.

Two workers share Redis and PostgreSQL, so "refused everywhere" means every worker, at once, with
the per-worker key cache warm. A second, single-process gateway on the embedded SQLite store shows
the same lifecycle there and what a failing audit write does to an admin action.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.databases import postgres_database
from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment, free_port
from tests.support.mock_upstream import MockUpstream
from tests.support.tcp_proxy import TcpProxy

MASTER = "sk-keys-master"
ADMIN_KEY = "sk-keys-admin"
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
REDIS_URL = "redis://127.0.0.1:6379/5"
CHAT = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}


def config(api_base: str) -> dict[str, Any]:
    return {
        "model_list": [
            deployment("auto", "mock-alpha", api_base, id="alpha", tier="budget"),
            deployment("auto", "mock-beta", api_base, id="beta", tier="premium"),
            deployment("other", "mock-other", api_base, id="other"),
            deployment("embed", "mock-embed", api_base, id="embed"),
            deployment("tiered", "mock-cheap", api_base, id="tiered-budget", tier="budget"),
            deployment("tiered", "mock-strong", api_base, id="tiered-premium", tier="premium"),
        ],
        "router_settings": {
            "routing_strategy": "simple-shuffle",
            "group_strategies": {"tiered": "llmrouter-centroid"},
        },
    }


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as mock:
        yield mock


@pytest.fixture(scope="module")
def cluster(upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {"ROUTEIQ_MASTER_KEY": MASTER, "ROUTEIQ_ADMIN_KEYS": ADMIN_KEY, "ROUTEIQ_REDIS_URL": REDIS_URL}
    with postgres_database() as database_url:
        env["ROUTEIQ_DATABASE_URL"] = database_url
        gateway = Gateway(config(upstream.base_url), tmp_path_factory.mktemp("keys"), env, ("--workers", "2"))
        with gateway:
            gateway.wait_for_log("router built", 2)
            yield gateway


def create_key(gateway: Gateway, **fields: Any) -> dict[str, Any]:
    response = httpx.post(f"{gateway.url}/admin/keys", headers=ADMIN, json=fields)
    assert response.status_code == 201, response.text
    return response.json()


def chat(gateway: Gateway, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json=body or CHAT,
        timeout=20,
    )


def audit(gateway: Gateway, **filters: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{gateway.url}/admin/audit", headers=ADMIN, params=filters)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_a_key_is_shown_once_stored_hashed_and_works_with_the_sdk(cluster: Gateway) -> None:
    created = create_key(cluster, name="ci", team="search", user="ana", metadata={"cost_center": "42"})
    secret = created["key"]
    assert secret.startswith("sk-riq-") and created["key_prefix"] == secret[: len(created["key_prefix"])]
    assert created["team"] == "search" and created["status"] == "active"

    listed = httpx.get(f"{cluster.url}/admin/keys", headers=ADMIN, params={"team": "search"}).json()
    (entry,) = [key for key in listed["data"] if key["key_id"] == created["key_id"]]
    assert "key" not in entry and "key_hash" not in entry and secret not in str(listed)

    client = openai.OpenAI(base_url=f"{cluster.url}/v1", api_key=secret, max_retries=0)
    reply = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    assert [model.id for model in client.models.list()][:4] == ["auto", "other", "embed", "tiered"]


def test_a_revoked_key_is_refused_by_every_worker_at_once(cluster: Gateway) -> None:
    created = create_key(cluster, team="search")
    secret, key_id = created["key"], created["key_id"]
    for _ in range(12):  # warm the key cache of both workers
        assert chat(cluster, secret).status_code == 200

    revoked = httpx.post(f"{cluster.url}/admin/keys/{key_id}/revoke", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"

    headers = {"authorization": f"Bearer {secret}"}
    for _ in range(12):
        response = chat(cluster, secret)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "key_revoked"
        assert response.headers["x-request-id"]
        embeddings = httpx.post(
            f"{cluster.url}/v1/embeddings", headers=headers, json={"model": "embed", "input": "x"}
        )
        assert embeddings.status_code == 401
        assert httpx.get(f"{cluster.url}/models", headers=headers).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{cluster.url}/v1", api_key=secret, max_retries=0).models.list()


def test_rotation_replaces_the_secret_and_expiry_ends_a_key(cluster: Gateway) -> None:
    created = create_key(cluster, user="bo")
    assert chat(cluster, created["key"]).status_code == 200
    rotated = httpx.post(f"{cluster.url}/admin/keys/{created['key_id']}/rotate", headers=ADMIN).json()
    assert rotated["key"] != created["key"] and rotated["key_id"] == created["key_id"]
    old = chat(cluster, created["key"])
    assert old.status_code == 401 and old.json()["error"]["code"] == "invalid_api_key"
    assert chat(cluster, rotated["key"]).status_code == 200

    brief = create_key(cluster, expires_in_seconds=1)
    assert chat(cluster, brief["key"]).status_code == 200

    def expired() -> None:  # the server's own clock: a second of real time
        response = chat(cluster, brief["key"])
        assert response.status_code == 401 and response.json()["error"]["code"] == "key_expired"

    eventually_sync(expired, timeout=10, interval=0.2)


def test_allowed_groups_and_models_bound_what_a_key_reaches(cluster: Gateway) -> None:
    scoped = create_key(cluster, allowed_groups=["auto"], allowed_models=["*mock-beta"])
    for _ in range(6):
        served = chat(cluster, scoped["key"])
        assert served.status_code == 200 and served.headers["x-routeiq-served-model"] == "mock-beta"
    refused = chat(cluster, scoped["key"], {**CHAT, "model": "other"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"

    changed = httpx.patch(
        f"{cluster.url}/admin/keys/{scoped['key_id']}", headers=ADMIN, json={"allowed_groups": ["other"]}
    )
    assert changed.status_code == 200 and changed.json()["allowed_groups"] == ["other"]
    assert chat(cluster, scoped["key"]).status_code == 403  # every worker, at once
    unknown = httpx.post(f"{cluster.url}/admin/keys", headers=ADMIN, json={"allowed_groups": ["nope"]})
    assert unknown.status_code == 400 and "nope" in unknown.json()["error"]["message"]


def test_keys_are_data_plane_only_and_malformed_limits_are_refused(cluster: Gateway) -> None:
    secret = create_key(cluster)["key"]
    admin_try = httpx.get(f"{cluster.url}/admin/keys", headers={"authorization": f"Bearer {secret}"})
    assert admin_try.status_code == 401 and admin_try.json()["error"]["code"] == "invalid_admin_key"

    for bad in (
        {"limits": [{"metric": "requests", "window": "fortnight", "limit": 5}]},
        {"limits": [{"metric": "requests", "window": "minute", "limit": -1}]},
        {"rpm_limit": "many"},
        {"colour": "blue"},
    ):
        response = httpx.post(f"{cluster.url}/admin/keys", headers=ADMIN, json=bad)
        assert response.status_code == 400, (bad, response.text)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"], error
        assert response.headers["x-request-id"]

    as_form = httpx.post(f"{cluster.url}/admin/keys", headers=ADMIN, content=b'{"team": "a"}')
    assert as_form.status_code == 400 and as_form.json()["error"]["code"] == "invalid_json"
    assert "content-type: application/json" in as_form.json()["error"]["message"]


def test_every_admin_action_is_audited_with_actor_and_request_id(cluster: Gateway) -> None:
    response = httpx.post(
        f"{cluster.url}/admin/keys", headers={**ADMIN, "x-request-id": "req-audit-create"}, json={"team": "t"}
    )
    key_id = response.json()["key_id"]
    httpx.patch(f"{cluster.url}/admin/keys/{key_id}", headers=ADMIN, json={"user": "u"})
    httpx.post(f"{cluster.url}/admin/keys/{key_id}/rotate", headers=ADMIN)
    httpx.delete(f"{cluster.url}/admin/keys/{key_id}", headers=ADMIN)
    missing = httpx.post(f"{cluster.url}/admin/keys/key_missing/revoke", headers=ADMIN)
    assert missing.status_code == 404
    strategy = httpx.put(f"{cluster.url}/admin/strategy", headers=ADMIN, json={"strategy": "least-busy"})
    assert strategy.status_code == 200

    creations = audit(cluster, action="key.create", since=time.time() - 120, limit=500)
    (created,) = [record for record in creations if record["request_id"] == "req-audit-create"]
    assert created["outcome"] == "success" and created["details"]["key_id"] == key_id
    assert created["actor"].startswith("key:admin-") and ADMIN_KEY not in str(created)
    on_key = audit(cluster, target=key_id)
    assert [record["action"] for record in on_key] == ["key.revoke", "key.rotate", "key.update"]
    assert all(record["outcome"] == "success" for record in on_key)
    (failed,) = audit(cluster, target="key_missing")
    assert failed["action"] == "key.revoke" and failed["outcome"] == "failure"
    (changed,) = audit(cluster, action="strategy.set", limit=1)
    assert changed["details"]["strategy"] == "least-busy" and changed["target"] == "*"

    first = httpx.get(f"{cluster.url}/admin/audit", headers=ADMIN, params={"limit": 2}).json()
    second = httpx.get(
        f"{cluster.url}/admin/audit", headers=ADMIN, params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert len(first["data"]) == 2 and len(second["data"]) == 2
    assert first["data"][-1]["id"] > second["data"][0]["id"]


@pytest.fixture(scope="module")
def embedded(upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("embedded")
    env = {"ROUTEIQ_ADMIN_KEYS": ADMIN_KEY, "ROUTEIQ_DATA_DIR": str(tmp / "data")}
    with Gateway(config(upstream.base_url), tmp, env) as gateway:
        yield gateway


def test_embedded_sqlite_store_serves_keys_even_on_an_open_data_plane(embedded: Gateway) -> None:
    assert (Path(embedded.log_path).parent / "data" / "routeiq.db").exists()
    ready = httpx.get(f"{embedded.url}/_health/ready").json()
    assert ready["checks"]["database"] == "sqlite"
    created = create_key(embedded, team="a")
    assert chat(embedded, created["key"]).status_code == 200
    assert chat(embedded, "anything-else").status_code == 200  # open: an unknown key is no key
    httpx.post(f"{embedded.url}/admin/keys/{created['key_id']}/revoke", headers=ADMIN)
    assert chat(embedded, created["key"]).status_code == 401  # but a revoked one is refused


def test_an_action_that_cannot_be_audited_is_refused(embedded: Gateway) -> None:
    database = Path(embedded.log_path).parent / "data" / "routeiq.db"
    with sqlite3.connect(database) as connection:
        connection.execute("ALTER TABLE audit_log RENAME TO audit_log_away")
    try:
        before = len(httpx.get(f"{embedded.url}/admin/keys", headers=ADMIN).json()["data"])
        refused = httpx.post(f"{embedded.url}/admin/keys", headers=ADMIN, json={"team": "ghost"})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "audit_unavailable"
        assert refused.headers["retry-after"] and refused.headers["x-request-id"]
        after = httpx.get(f"{embedded.url}/admin/keys", headers=ADMIN).json()["data"]
        assert len(after) == before  # the action did not happen unrecorded
    finally:
        with sqlite3.connect(database) as connection:
            connection.execute("ALTER TABLE audit_log_away RENAME TO audit_log")
    assert httpx.post(f"{embedded.url}/admin/keys", headers=ADMIN, json={"team": "ok"}).status_code == 201


def test_a_changed_configuration_is_audited_at_startup(upstream: MockUpstream, tmp_path: Path) -> None:
    env = {"ROUTEIQ_ADMIN_KEYS": ADMIN_KEY, "ROUTEIQ_DATA_DIR": str(tmp_path / "data")}
    first = config(upstream.base_url)
    second = {**first, "model_list": [*first["model_list"][:2], *first["model_list"][4:]]}
    port = free_port()  # the port is a setting too: keep it, so only model_list changes
    for step, settings in enumerate((first, first, second)):
        (tmp_path / str(step)).mkdir()
        gateway = Gateway(settings, tmp_path / str(step), env)
        gateway.port, gateway.url = port, f"http://127.0.0.1:{port}"
        with gateway:
            records = audit(gateway, action="config.change")
            assert len(records) == (1 if step < 2 else 2), records  # an unchanged restart adds none
    latest = records[0]
    assert latest["actor"] == "system:startup" and latest["details"]["changed"] == ["model_list"]
    assert records[1]["details"]["changed"] == ["*"]  # the first start: everything is new
    assert "sk-upstream" not in str(records)


def dry_run(gateway: Gateway, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/routeiq/route", headers={"authorization": f"Bearer {key}"}, json=body, timeout=20
    )


PROFILE_NAMES = ["eco", "premium", "free", "reasoning"]  # "auto" is a group here


def test_models_list_and_retrieve_show_what_the_caller_can_use(cluster: Gateway) -> None:
    def client(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{cluster.url}/v1", api_key=key, max_retries=0)

    master = client(MASTER)
    assert [model.id for model in master.models.list()] == [
        "auto",
        "other",
        "embed",
        "tiered",
        *PROFILE_NAMES,
    ]
    assert master.models.retrieve("premium").id == "premium"
    assert master.models.retrieve("tiered").owned_by == "routeiq"
    with pytest.raises(openai.NotFoundError):
        master.models.retrieve("mock-alpha")  # a deployment, not a group
    bare = httpx.get(f"{cluster.url}/models/other", headers={"authorization": f"Bearer {MASTER}"})
    assert bare.status_code == 200 and bare.json()["id"] == "other"

    grouped = client(create_key(cluster, allowed_groups=["other", "embed"])["key"])
    assert [model.id for model in grouped.models.list()] == ["other", "embed"]  # no "auto": no profiles
    for hidden in ("auto", "premium", "tiered"):
        with pytest.raises(openai.NotFoundError):
            grouped.models.retrieve(hidden)
    assert grouped.models.retrieve("embed").id == "embed"

    # A group whose every deployment serves a model the key may not use is not offered either.
    narrow = client(create_key(cluster, allowed_models=["*mock-alpha", "*mock-other"])["key"])
    assert [model.id for model in narrow.models.list()] == ["auto", "other", *PROFILE_NAMES]


def test_the_dry_run_answers_within_the_key_scope(cluster: Gateway) -> None:
    hard = {
        "model": "tiered",
        "messages": [{"role": "user", "content": "prove it"}],
        "routeiq": {"profile": "premium"},
    }
    unrestricted = dry_run(cluster, MASTER, hard).json()
    assert unrestricted["decision"]["tier"] == "premium"

    budget_only = create_key(cluster, allowed_models=["*mock-cheap"])["key"]
    told = dry_run(cluster, budget_only, hard)
    assert told.status_code == 200, told.text
    assert told.json()["decision"]["served_model"] == "mock-cheap"
    assert [candidate["deployment_id"] for candidate in told.json()["candidates"]] == ["tiered-budget"]
    served = chat(cluster, budget_only, hard)
    assert served.status_code == 200 and served.headers["x-routeiq-served-model"] == "mock-cheap"

    elsewhere = create_key(cluster, allowed_groups=["other"])["key"]
    refused = dry_run(cluster, elsewhere, hard)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"


def test_session_floors_belong_to_the_caller_that_raised_them(cluster: Gateway) -> None:
    team_a = create_key(cluster, team="a")["key"]
    team_b = create_key(cluster, team="b")["key"]
    turn = {"model": "tiered", "user": "alice-123", "messages": [{"role": "user", "content": "hi"}]}

    raised = chat(cluster, team_b, {**turn, "routeiq": {"profile": "premium"}})
    assert raised.status_code == 200 and raised.headers["x-routeiq-tier"] == "premium"
    assert dry_run(cluster, team_b, turn).json()["session_floor"] == "premium"  # B's session did rise

    for other in (team_a, MASTER):  # same `user` string, another caller: another session
        preview = dry_run(cluster, other, turn)
        assert preview.status_code == 200 and preview.json()["session_floor"] is None, preview.text


def test_absurd_admin_inputs_are_refused_with_400(cluster: Gateway) -> None:
    for path, params in (
        ("/admin/keys", {"offset": "99999999999999999999"}),
        ("/admin/keys", {"offset": str(10**12)}),
        ("/admin/audit", {"cursor": "99999999999999999999"}),
        ("/admin/audit", {"cursor": "-5"}),
        ("/admin/spend/records", {"cursor": "99999999999999999999"}),
        ("/admin/audit", {"actor": "ana\x00"}),  # PostgreSQL cannot take NUL: not a store outage
    ):
        response = httpx.get(f"{cluster.url}{path}", headers=ADMIN, params=params)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json()["error"]["param"] == next(iter(params)), response.text
    nul_id = httpx.get(f"{cluster.url}/admin/keys/%00", headers=ADMIN)
    assert nul_id.status_code == 400 and nul_id.json()["error"]["param"] == "key_id"

    for bad, param in (
        ({"budget_usd": 1e308}, "budget_usd"),
        ({"tpm_limit": 10**30}, "tpm_limit"),
        ({"limits": [{"metric": "spend_usd", "window": "day", "limit": 1e308}]}, "limits.0"),
        ({"limits": [{"metric": "requests", "window": "minute", "limit": 1e300}]}, "limits.0"),
    ):
        response = httpx.post(f"{cluster.url}/admin/keys", headers=ADMIN, json=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["param"] == param
    infinite = httpx.post(
        f"{cluster.url}/admin/keys",
        headers={**ADMIN, "content-type": "application/json"},
        content=b'{"budget_usd": Infinity}',
    )
    assert infinite.status_code == 400 and infinite.json()["error"]["param"] == "budget_usd"
    with_nul = httpx.post(f"{cluster.url}/admin/keys", headers=ADMIN, json={"team": "a\x00b"})
    assert with_nul.status_code == 400, with_nul.text

    generous = create_key(cluster, budget_usd=1e9, rpm_limit=10**12)  # the largest values accepted
    assert chat(cluster, generous["key"]).status_code == 200
    patched = httpx.patch(
        f"{cluster.url}/admin/keys/{generous['key_id']}", headers=ADMIN, json={"budget_usd": 1e308}
    )
    assert patched.status_code == 400
    assert chat(cluster, generous["key"]).status_code == 200


def test_a_revoked_or_expired_key_cannot_be_rotated(cluster: Gateway) -> None:
    revoked = create_key(cluster)
    httpx.post(f"{cluster.url}/admin/keys/{revoked['key_id']}/revoke", headers=ADMIN)
    refused = httpx.post(f"{cluster.url}/admin/keys/{revoked['key_id']}/rotate", headers=ADMIN)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "key_revoked"
    assert "key" not in refused.json()  # no new secret was issued
    assert chat(cluster, revoked["key"]).json()["error"]["code"] == "key_revoked"
    (record,) = audit(cluster, target=revoked["key_id"], action="key.rotate")
    assert record["outcome"] == "failure"

    expired = create_key(cluster, expires_at=time.time() - 1)
    refused = httpx.post(f"{cluster.url}/admin/keys/{expired['key_id']}/rotate", headers=ADMIN)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "key_expired"


def test_metrics_are_open_by_default_for_scrapers(cluster: Gateway) -> None:
    scraped = httpx.get(f"{cluster.url}/metrics")  # a master key is set, the scraper sends none
    assert scraped.status_code == 200 and "routeiq_" in scraped.text


def test_an_open_data_plane_refuses_dead_virtual_keys_but_not_placeholders(embedded: Gateway) -> None:
    created = create_key(embedded, team="a")
    rotated = httpx.post(f"{embedded.url}/admin/keys/{created['key_id']}/rotate", headers=ADMIN).json()
    for dead in (created["key"], "sk-riq-" + "x" * 43):  # rotated away; never issued
        response = chat(embedded, dead)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert response.headers["x-request-id"]
    assert chat(embedded, rotated["key"]).status_code == 200

    # The README's example: a placeholder that was never a RouteIQ key is no key at all.
    readme = openai.OpenAI(
        base_url=f"{embedded.url}/v1", api_key="anything-unless-ROUTEIQ_MASTER_KEY-is-set", max_retries=0
    )
    assert readme.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}]).id
    assert httpx.post(f"{embedded.url}/v1/chat/completions", json=CHAT, timeout=20).status_code == 200


@pytest.fixture(scope="module")
def guarded(
    upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, TcpProxy]]:
    """One worker on PostgreSQL reached through a proxy the test can cut; /metrics for admins only."""
    with postgres_database() as database_url, TcpProxy("127.0.0.1", 5432) as proxy:
        env = {
            "ROUTEIQ_MASTER_KEY": MASTER,
            "ROUTEIQ_ADMIN_KEYS": ADMIN_KEY,
            "ROUTEIQ_DATABASE_URL": database_url.replace(":5432/", f":{proxy.port}/"),
            "ROUTEIQ_METRICS_AUTH": "admin",
        }
        with Gateway(config(upstream.base_url), tmp_path_factory.mktemp("guarded"), env) as gateway:
            yield gateway, proxy


def test_failed_admin_authentication_is_audited_once_per_source_and_interval(
    guarded: tuple[Gateway, TcpProxy],
) -> None:
    gateway, _ = guarded
    guesses = ["sk-guess-0", *(f"sk-guess-{n}" for n in range(1, 15)), None, MASTER]
    for guess in guesses:
        headers = {"authorization": f"Bearer {guess}"} if guess else {}
        response = httpx.get(f"{gateway.url}/admin/keys", headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_admin_key"

    (record,) = audit(gateway, action="admin.auth_failed")  # 17 failures, one record
    assert record["actor"] == "unauthenticated" and record["outcome"] == "denied"
    assert record["target"] == "/admin/keys" and record["request_id"]
    details = record["details"]
    assert details["source_ip"] == "127.0.0.1" and details["reason"] == "invalid_key"
    assert details["key_fingerprint"].startswith("sha256:")
    assert "sk-guess" not in str(record) and MASTER not in str(record)


def test_metrics_auth_admin_takes_only_an_admin_key(guarded: tuple[Gateway, TcpProxy]) -> None:
    gateway, _ = guarded
    secret = create_key(gateway)["key"]
    for key in (None, MASTER, secret):
        headers = {"authorization": f"Bearer {key}"} if key else {}
        response = httpx.get(f"{gateway.url}/metrics", headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_admin_key"
    scraped = httpx.get(f"{gateway.url}/metrics", headers=ADMIN)
    assert scraped.status_code == 200 and "routeiq_" in scraped.text


def test_admin_reads_answer_503_while_the_database_is_down(guarded: tuple[Gateway, TcpProxy]) -> None:
    gateway, proxy = guarded
    proxy.cut()
    try:
        for path in ("/admin/audit", "/admin/keys", "/admin/spend/records"):
            response = httpx.get(f"{gateway.url}{path}", headers=ADMIN, timeout=30)
            assert response.status_code == 503, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == "store_unavailable" and "127.0.0.1" not in error["message"]
            assert response.headers["retry-after"] and response.headers["x-request-id"]
        assert chat(gateway, MASTER).status_code == 200  # the master key needs no database
    finally:
        proxy.restore()
    assert httpx.get(f"{gateway.url}/admin/audit", headers=ADMIN, timeout=30).status_code == 200
