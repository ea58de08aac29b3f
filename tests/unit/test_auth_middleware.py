"""Who may read /metrics under each ``metrics_auth``, through the real middleware on a small app."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from routeiq.middleware.auth import AuthMiddleware
from routeiq.runtime_handle import RuntimeHandle

MASTER, ADMIN = "sk-master", "sk-admin"


async def scrape(request: Request) -> PlainTextResponse:
    return PlainTextResponse("routeiq_requests_total 1\n")


def client(metrics_auth: str, admin_keys: list[str] | None = None) -> TestClient:
    middleware = Middleware(
        AuthMiddleware,
        master_key=MASTER,
        admin_keys=[ADMIN] if admin_keys is None else admin_keys,
        metrics_auth=metrics_auth,
        runtime=RuntimeHandle(),  # master and admin keys only: no key store to ask
    )
    return TestClient(Starlette(routes=[Route("/metrics", scrape)], middleware=[middleware]))


def status(test_client: TestClient, key: str | None) -> int:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return test_client.get("/metrics", headers=headers).status_code


@pytest.mark.parametrize(
    ("metrics_auth", "expected"),
    [
        ("open", {None: 200, MASTER: 200, ADMIN: 200}),
        ("admin", {None: 401, MASTER: 401, ADMIN: 200}),
        ("data", {None: 401, MASTER: 200, ADMIN: 200}),
    ],
)
def test_who_reads_metrics(metrics_auth: str, expected: dict[str | None, int]) -> None:
    test_client = client(metrics_auth)
    assert {key: status(test_client, key) for key in expected} == expected


def test_admin_only_metrics_without_admin_keys_say_how_to_open_them() -> None:
    response = client("admin", admin_keys=[]).get("/metrics", headers={"authorization": f"Bearer {MASTER}"})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "admin_disabled" and "ROUTEIQ_ADMIN_KEYS" in error["message"]
