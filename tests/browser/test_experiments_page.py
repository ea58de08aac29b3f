"""The admin UI's Experiments page in a real browser against the real gateway and the mock upstream:
create an experiment with two arms in the form (a bad definition's error shown at its field), send
traffic and feedback with the OpenAI SDK, watch both arms fill in the live table, promote an arm and
see it become the group's strategy.

Fixtures and helpers are those of test_admin_ui.py (chromium, screenshots); this module runs its own
gateway, whose deployments have prices so the cost metric has something to compare.
``ROUTEIQ_UPDATE_SCREENSHOTS=1`` copies the screenshots to docs/images/admin-experiments*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.browser.test_admin_ui import (  # noqa: F401  (page, shots, upstream: fixtures)
    ADMIN,
    MASTER,
    WAIT_MS,
    expect,
    open_page,
    page,
    shoot,
    shots,
    upstream,
)
from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

REQUESTS = 40


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: MockUpstream) -> Iterator[Gateway]:  # noqa: F811
    config = {
        "model_list": [
            deployment(
                "auto", "mock-cheap", upstream.base_url, id="cheap", tier="budget", input_cost_per_token=1e-7
            ),
            deployment(
                "auto", "mock-dear", upstream.base_url, id="dear", tier="premium", input_cost_per_token=1e-5
            ),
        ],
        "router_settings": {"routing_strategy": "simple-shuffle"},
    }
    env = {"ROUTEIQ_MASTER_KEY": MASTER, "ROUTEIQ_ADMIN_KEYS": ADMIN}
    with Gateway(config, tmp_path_factory.mktemp("experiments-ui"), env) as running:
        yield running


def admin_get(gateway: Gateway, path: str) -> Any:
    answer = httpx.get(f"{gateway.url}{path}", headers={"authorization": f"Bearer {ADMIN}"}, timeout=20)
    assert answer.status_code == 200, answer.text
    return answer.json()


def send_traffic_and_feedback(gateway: Gateway, served: dict[str, int], count: int) -> None:
    """``count`` chat completions through the SDK (each its own unit: the master key has no team),
    and a thumbs up or down on a few of them; ``served`` counts the requests each arm served."""
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER, max_retries=0)
    rated: list[str] = []
    for number in range(count):
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": f"question {number}"}]
        )
        arm = raw.headers["x-routeiq-arm"]
        served[arm] = served.get(arm, 0) + 1
        if number % 8 == 0:
            rated.append(raw.headers["x-request-id"])

    for index, request_id in enumerate(rated):

        def accepted(request_id: str = request_id, score: str = "up" if index % 2 else "down") -> None:
            try:  # the decision record is written in batches: until then the request is unknown
                client.post(
                    "/routeiq/feedback",
                    body={"request_id": request_id, "score": score},
                    cast_to=httpx.Response,
                )
            except openai.NotFoundError as error:
                raise AssertionError("decision record not written yet") from error

        eventually_sync(accepted, timeout=WAIT_MS / 1000)


def test_create_an_experiment_in_the_form(page: Any, gateway: Gateway, shots: Path) -> None:  # noqa: F811
    page.goto(f"{gateway.url}/ui/")
    page.get_by_label("Admin key").fill(ADMIN)
    page.get_by_role("button", name="Sign in").click()
    open_page(page, "Experiments")
    expect(page.get_by_text("No experiment yet")).to_be_visible()
    page.get_by_role("button", name="New experiment").click()
    form = page.get_by_test_id("create-experiment")
    form.get_by_label("Experiment name").fill("shuffle vs cheapest")
    form.get_by_label("Group").select_option("auto")
    form.get_by_label("Arm 1 strategy").select_option("simple-shuffle")
    form.get_by_label("Arm 2 strategy").select_option("cost-based-routing")
    form.get_by_label("Primary metric").select_option("cost_per_request")
    form.get_by_label("Minimum sample per arm").fill("15")
    # Weights that add up to nothing: the server's 400 names `arms`, shown at the arms, nothing made.
    form.get_by_label("Arm 1 weight").fill("0")
    form.get_by_label("Arm 2 weight").fill("0")
    form.get_by_role("button", name="Start experiment").click()
    expect(page.locator("#exp-error-arms")).to_contain_text("weight")
    assert admin_get(gateway, "/admin/experiments")["data"] == []
    form.get_by_label("Arm 1 weight").fill("1")
    form.get_by_label("Arm 2 weight").fill("1")
    # Two arms of one name: the 400 names arms[1].name, shown under that input, which takes the focus.
    form.get_by_label("Arm 2 name").fill("control")
    form.get_by_role("button", name="Start experiment").click()
    expect(page.locator('[id="exp-error-arms.1.name"]')).to_contain_text("used twice")
    expect(form.get_by_label("Arm 2 name")).to_be_focused()
    form.get_by_label("Arm 2 name").fill("challenger")
    shoot(page, shots, "experiments-create")
    form.get_by_role("button", name="Start experiment").click()
    expect(page.get_by_role("status").filter(has_text="is running on auto")).to_be_visible()
    expect(page.get_by_test_id("experiments")).to_contain_text("shuffle vs cheapest")
    expect(page.get_by_test_id("verdict")).to_contain_text("Not enough data yet")
    expect(page.get_by_test_id("experiments")).to_contain_text("verdict: not enough data")


def test_traffic_fills_both_arms_live(page: Any, gateway: Gateway, shots: Path) -> None:  # noqa: F811
    served: dict[str, int] = {}
    send_traffic_and_feedback(gateway, served, REQUESTS // 2)
    # The chart needs two recorded points (one every 5 s): a second batch after them moves it.
    chart = page.get_by_test_id("estimate-chart").locator("svg")
    expect(chart).to_be_visible()
    drawn = chart.get_attribute("aria-label")  # says how many points
    send_traffic_and_feedback(gateway, served, REQUESTS // 2)
    assert set(served) == {"control", "challenger"}, served  # 40 units, 50/50: both arms get some
    table = page.get_by_test_id("arms")
    for arm, count in served.items():  # no reload: the table refreshes itself every 2 s
        expect(table.locator(f'tr[data-arm="{arm}"] [data-testid="requests"]')).to_have_text(str(count))
    expect(table.locator("tbody")).to_contain_text(re.compile(r"mean (0|1)\.\d\d"))  # the feedback arrived
    expect(chart).not_to_have_attribute("aria-label", drawn or "")  # a point after the second batch
    shoot(page, shots, "experiments")


def test_weights_pause_and_resume(page: Any, gateway: Gateway) -> None:  # noqa: F811
    page.get_by_role("button", name="Change weights").click()
    page.get_by_label("Weight of challenger").fill("3")
    page.get_by_role("button", name="Save weights").click()
    expect(page.get_by_role("status").filter(has_text="Weights changed")).to_be_visible()
    expect(page.get_by_test_id("arms").locator('tr[data-arm="challenger"]')).to_contain_text("75% of units")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_test_id("experiments")).to_contain_text("paused")
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_test_id("experiment-actions")).to_contain_text("running")
    (experiment,) = admin_get(gateway, "/admin/experiments")["data"]
    assert experiment["state"] == "running"
    assert {arm["name"]: arm["weight"] for arm in experiment["arms"]} == {"control": 1, "challenger": 3}


def test_promote_makes_the_arm_the_groups_strategy(page: Any, gateway: Gateway, shots: Path) -> None:  # noqa: F811
    page.get_by_role("button", name="Promote challenger").click()  # the confirmation is accepted
    expect(page.get_by_role("status").filter(has_text="now routes with cost-based-routing")).to_be_visible()
    expect(page.get_by_test_id("experiments")).to_contain_text("promoted challenger")
    assert admin_get(gateway, "/admin/strategy")["active"]["groups"]["auto"] == "cost-based-routing"
    page.set_viewport_size({"width": 420, "height": 860})
    shoot(page, shots, "experiments-narrow")
    page.set_viewport_size({"width": 1280, "height": 800})
    open_page(page, "Routing")
    expect(page.get_by_label("Strategy of auto")).to_have_value("cost-based-routing")
