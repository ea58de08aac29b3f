"""The admin UI in a real browser (Playwright driving Debian's headless chromium) against the real
gateway process and the mock upstream: log in, watch live traffic on the dashboard, change a strategy
and see the next request follow it, find that request in the decisions explorer, create and revoke a
key, apply a config change and see it served.

Every page is screenshotted into the test's output folder (printed at the end of the module);
``ROUTEIQ_UPDATE_SCREENSHOTS=1`` also copies them to docs/images/admin-*.png for docs/admin.md.
Chromium comes from ``scripts/browser.sh`` (run by ``make test``); without it these tests fail,
loudly, naming the fix.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' (playwright)")
expect = playwright_sync.expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MASTER = "sk-ui-master"
ADMIN = "sk-ui-admin"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
WAIT_MS = 20_000  # a loaded machine: the decision log and the metrics stream are batched


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("admin-ui-screenshots")
    yield folder
    print(f"\nadmin UI screenshots: {folder}")
    if os.environ.get("ROUTEIQ_UPDATE_SCREENSHOTS") == "1":
        for shot in folder.glob("*.png"):
            shutil.copy(shot, DOCS_IMAGES / f"admin-{shot.name}")


@pytest.fixture(scope="module")
def carried() -> dict[str, str]:
    """What one step hands the next (the tests of this module run in order, on one page)."""
    return {}


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: MockUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("admin-ui")
    policy = {"rules": [{"name": "no-blocked-team", "action": "deny", "match": {"team": ["blocked"]}}]}
    (tmp / "policy.yaml").write_text(yaml.safe_dump(policy))
    config = {
        "model_list": [
            deployment("auto", "mock-alpha", upstream.base_url, id="alpha", tier="budget"),
            deployment("auto", "mock-beta", upstream.base_url, id="beta", tier="premium"),
        ],
        "routeiq": {
            "policy": {"file": str(tmp / "policy.yaml")},
            "plugins": [{"name": "pii"}, {"name": "cost_tracker"}],
            "admin": {"metrics_stream_seconds": 1},
        },
    }
    env = {"ROUTEIQ_MASTER_KEY": MASTER, "ROUTEIQ_ADMIN_KEYS": ADMIN}
    with Gateway(config, tmp, env) as running:
        yield running


@pytest.fixture(scope="module")
def page(gateway: Gateway) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            "BROWSER TESTS NOT RUN: /usr/bin/chromium is missing. Install it with scripts/browser.sh "
            "(apt-get install chromium); `make test` runs it first."
        )
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        tab = context.new_page()
        tab.on("dialog", lambda dialog: dialog.accept())  # the revoke confirmation
        yield tab
        context.close()
        browser.close()


def chat(gateway: Gateway, model: str = "auto", key: str = MASTER, text: str = "hello") -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )


def shoot(page: Any, folder: Path, name: str) -> None:
    page.evaluate("() => window.scrollTo(0, 0)")  # the sticky bar stays on top of the page
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def open_page(page: Any, title: str) -> None:
    page.get_by_role("navigation", name="Pages").get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()


def test_serves_the_ui_publicly_with_caching(gateway: Gateway) -> None:
    index = httpx.get(f"{gateway.url}/ui/decisions")  # a deep link: the app, no key needed
    assert index.status_code == 200 and index.headers["cache-control"] == "no-cache"
    asset = index.text.split('src="', 1)[1].split('"', 1)[0]
    assert asset.startswith("/ui/assets/")
    answer = httpx.get(gateway.url + asset)
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(f"{gateway.url}/admin/keys").status_code == 401  # the data stays behind the key


def test_login_refuses_a_wrong_key_then_signs_in(page: Any, gateway: Gateway, shots: Path) -> None:
    page.goto(f"{gateway.url}/ui/")
    page.get_by_label("Admin key").fill("sk-not-the-admin-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not an admin key")
    page.get_by_label("Admin key").fill(ADMIN)
    shoot(page, shots, "login")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()
    assert ADMIN not in page.url


def test_dashboard_updates_from_live_traffic(page: Any, gateway: Gateway, shots: Path) -> None:
    expect(page.get_by_text("live", exact=True)).to_be_visible()
    expect(page.get_by_test_id("no-traffic")).to_be_visible()  # nothing served yet
    for number in range(12):
        assert chat(gateway, text=f"hello {number}").status_code == 200
    stats = page.get_by_test_id("stats")
    # The figures come from the stream: they change without a reload.
    expect(stats).to_contain_text("12 in the last")
    expect(page.get_by_test_id("no-traffic")).to_have_count(0)
    expect(page.get_by_label("By served model")).to_contain_text("mock-")
    shoot(page, shots, "dashboard")
    page.keyboard.press("Tab")  # keyboard users get the skip link first
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


def test_strategy_change_is_followed_by_the_next_request(
    page: Any, gateway: Gateway, shots: Path, carried: dict[str, str]
) -> None:
    open_page(page, "Routing")
    page.get_by_label("Strategy of auto").select_option("cost-based-routing")
    expect(page.get_by_role("status")).to_contain_text("auto now routes with cost-based-routing")
    answer = chat(gateway, text="after the change")
    assert answer.status_code == 200
    assert answer.headers["x-routeiq-strategy"] == "cost-based-routing"
    shoot(page, shots, "routing")
    carried["request_id"] = answer.headers["x-request-id"]


def test_decisions_explorer_finds_that_request(page: Any, shots: Path, carried: dict[str, str]) -> None:
    request_id = carried["request_id"]
    open_page(page, "Decisions")
    page.get_by_label("Request id").fill(request_id)

    def listed() -> bool:  # the decision log is written in batches, off the request path
        page.get_by_role("button", name="Apply filters").click()
        rows = page.get_by_test_id("decisions").locator("tbody tr")
        expect(rows.first.or_(page.get_by_text("No decision matches."))).to_be_visible()
        return rows.count() == 1

    eventually_sync(listed, timeout=WAIT_MS / 1000)
    row = page.get_by_test_id("decisions").locator("tbody tr").first
    expect(row).to_contain_text("cost-based-routing")
    row.get_by_role("button").click()
    detail = page.get_by_test_id("decision-detail")
    expect(detail).to_contain_text(request_id)
    expect(detail.get_by_role("heading", name="Candidates")).to_be_visible()
    expect(detail).to_contain_text("alpha")
    page.get_by_label("Request id").fill("")
    page.get_by_role("button", name="Apply filters").click()
    row.get_by_role("button").click()
    shoot(page, shots, "decisions")


def test_create_use_and_revoke_a_key(page: Any, gateway: Gateway, shots: Path) -> None:
    open_page(page, "Keys")
    page.get_by_role("button", name="Create key").click()
    page.get_by_label("Name").fill("ui-made")
    page.get_by_label("Team", exact=True).first.fill("web")
    page.get_by_label("Requests / minute").fill("100")
    page.get_by_role("button", name="Create", exact=True).click()
    secret = page.get_by_label("Secret key").input_value()
    assert secret.startswith("sk-")
    assert chat(gateway, key=secret).status_code == 200
    row = page.get_by_test_id("keys").locator("tr", has_text="ui-made")

    def spend_shown() -> bool:  # the spend log is written off the request path, within a second
        page.get_by_role("button", name="Refresh").click()
        expect(row).to_be_visible()
        return "1 req" in row.inner_text()

    eventually_sync(spend_shown, timeout=WAIT_MS / 1000)
    shoot(page, shots, "keys")
    page.get_by_role("button", name="Done").click()
    expect(page.get_by_test_id("key-secret")).to_have_count(0)  # shown once, then gone
    page.get_by_role("button", name="Limits of ui-made").click()
    page.get_by_label("At most").first.fill("5")
    page.get_by_role("button", name="Add a limit").click()
    page.locator("#limit-1-metric").select_option("spend_usd")
    page.locator("#limit-1-window").select_option("day")
    page.locator("#limit-1-limit").fill("2.5")
    page.get_by_role("button", name="Save limits").click()
    expect(row).to_contain_text("5 requests / minute")
    expect(row).to_contain_text("$2.5 / day")
    page.get_by_role("button", name="Rotate ui-made").click()  # a new secret, shown once; the old one dies
    expect(page.get_by_test_id("key-secret")).to_contain_text("Key rotated")
    rotated = page.get_by_label("Secret key").input_value()
    assert rotated != secret and chat(gateway, key=secret).status_code == 401
    assert chat(gateway, key=rotated).status_code == 200
    page.get_by_role("button", name="Done").click()
    secret = rotated
    page.get_by_role("button", name="Revoke ui-made").click()
    expect(page.get_by_role("button", name="Revoke ui-made")).to_have_count(0)
    assert chat(gateway, key=secret).status_code == 401


def test_policies_and_plugins_pages(page: Any, shots: Path) -> None:
    open_page(page, "Policies")
    expect(page.get_by_test_id("rules")).to_contain_text("no-blocked-team")
    page.get_by_label("Team").fill("blocked")
    page.get_by_role("button", name="Test", exact=True).click()
    expect(page.get_by_test_id("policy-result")).to_contain_text("no-blocked-team")
    shoot(page, shots, "policies")
    open_page(page, "Plugins")
    plugins = page.get_by_test_id("plugins")
    expect(plugins).to_contain_text("cost_tracker")
    shoot(page, shots, "plugins")
    page.get_by_role("button", name="Disable pii").click()
    expect(plugins.locator("tr", has_text="pii")).to_contain_text("disabled")
    page.get_by_role("button", name="Enable pii").click()
    expect(plugins.locator("tr", has_text="pii")).to_contain_text("enabled")


def test_config_change_is_applied_and_served(
    page: Any, gateway: Gateway, upstream: MockUpstream, shots: Path
) -> None:
    open_page(page, "Config")
    editor = page.get_by_label("Configuration YAML")
    expect(editor).not_to_be_empty()
    document = yaml.safe_load(editor.input_value())
    document["model_list"].append(deployment("ui-added", "mock-gamma", upstream.base_url, id="gamma"))
    editor.fill("model_list: [ {model_name: 1 ")  # broken YAML: an inline error, nothing applied
    expect(page.get_by_test_id("config-errors")).to_be_visible()
    editor.fill(yaml.safe_dump(document, sort_keys=False))
    expect(page.get_by_text("valid", exact=True)).to_be_visible()
    page.get_by_role("button", name="Show diff").click()
    expect(page.get_by_test_id("config-diff")).to_contain_text("ui-added")
    shoot(page, shots, "config")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("status").filter(has_text="Applied")).to_be_visible()
    answer = eventually_sync(lambda: (r := chat(gateway, model="ui-added")).status_code == 200 and r)
    assert answer.headers["x-routeiq-group"] == "ui-added"


def test_audit_and_experiments_pages(page: Any, shots: Path) -> None:
    open_page(page, "Audit")
    audit = page.get_by_test_id("audit")
    expect(audit).to_contain_text("key.revoke")
    expect(audit).to_contain_text("strategy.set")
    shoot(page, shots, "audit")
    open_page(page, "Experiments")  # its own tests: test_experiments_page.py
    expect(page.get_by_text("No experiment yet")).to_be_visible()


def test_narrow_window_and_logout(page: Any, gateway: Gateway, shots: Path) -> None:
    page.set_viewport_size({"width": 420, "height": 860})
    open_page(page, "Dashboard")
    shoot(page, shots, "narrow")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("Admin key")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    page.goto(f"{gateway.url}/ui/keys")  # a deep link without a session: the login
    expect(page.get_by_label("Admin key")).to_be_visible()
    # A key that stops working (say, removed from ROUTEIQ_ADMIN_KEYS): the next call's 401 logs out.
    page.evaluate("() => sessionStorage.setItem('routeiq.admin-key', 'sk-no-longer-valid')")
    page.goto(f"{gateway.url}/ui/audit")
    expect(page.get_by_text("Your session ended")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
