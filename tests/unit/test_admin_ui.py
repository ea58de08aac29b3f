"""The admin UI as shipped: its committed build and generated API types match their sources (no node
needed to check), and the gateway serves it at /ui with the right caching, publicly, as a SPA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from routeiq.admin_ui.build_check import (
    SCHEMA_HEADER,
    STAMP_FILE,
    openapi_schema,
    schema_digest,
    ui_source_digest,
)
from routeiq.admin_ui.serve import STATIC_DIR, mount_admin_ui
from routeiq.middleware.paths import is_data_plane, is_public, is_shed, path_kind

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_TS = ROOT / "ui" / "src" / "api" / "schema.d.ts"


def test_committed_build_matches_the_ui_sources() -> None:
    assert STAMP_FILE.read_text().strip() == ui_source_digest(ROOT / "ui"), (
        "routeiq/admin_ui/static is stale: the UI sources changed since the build; run make ui"
    )


def test_generated_api_types_match_the_openapi_schema() -> None:
    header = SCHEMA_TS.read_text().splitlines()[0]
    assert header.startswith(SCHEMA_HEADER)
    assert header.removeprefix(SCHEMA_HEADER) == schema_digest(openapi_schema()), (
        "ui/src/api/schema.d.ts is stale: the admin API changed; run make ui-types, then make ui"
    )


def test_ui_paths_are_public_static_files_outside_governance() -> None:
    for path in ("/ui", "/ui/", "/ui/assets/index-abc.js", "/ui/decisions"):
        assert path_kind(path) == "ui"
        assert is_public(path) and not is_shed(path) and not is_data_plane(path)
    assert path_kind("/uix") == "data"  # only the /ui tree
    assert path_kind("/admin/keys") == "admin" and not is_public("/admin/keys")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    # The mount alone (the whole stack, keys included, is served in tests/browser).
    app = FastAPI()
    mount_admin_ui(app)
    yield TestClient(app)


def test_index_is_revalidated_and_hashed_assets_are_immutable(client: TestClient) -> None:
    index = client.get("/ui/")
    assert index.status_code == 200
    assert index.headers["cache-control"] == "no-cache"
    assert '<div id="root">' in index.text
    assets = sorted(path.name for path in (STATIC_DIR / "assets").iterdir())
    assert any(name.endswith(".js") for name in assets)
    for name in assets:
        answer = client.get(f"/ui/assets/{name}")
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_every_page_path_gets_the_app_and_a_missing_asset_is_a_404(client: TestClient) -> None:
    for page in ("/ui/decisions", "/ui/keys", "/ui/config/anything"):
        answer = client.get(page)
        assert answer.status_code == 200 and '<div id="root">' in answer.text
        assert answer.headers["cache-control"] == "no-cache"
    assert client.get("/ui/assets/index-gone.js").status_code == 404
    assert client.get("/ui", follow_redirects=True).status_code == 200
