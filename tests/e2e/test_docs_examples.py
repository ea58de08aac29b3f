"""The configuration and key examples in docs/ work against the demo config, as written.

Every ``yaml`` block with a ``routeiq:`` section is laid over ``config/demo.yaml`` and must pass
``routeiq check-config``; a policy block (``rules:``) is checked as the policy file of the demo. The
key-creation example in docs/keys.md is sent to a demo gateway, and the key it creates must then be
served.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.gateway import COMMAND_TIMEOUT_SECONDS, Gateway

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)
ADMIN_KEY = "sk-docs-admin"
# Blocks that cannot be checked against the demo, and why: (page, a name the block configures).
NOT_STANDALONE = {
    (
        "plugins.md",
        "code_names",
    ): "configures the third-party plugin the page builds; it is not installed here",
}


def is_routeiq_file(block: Any) -> bool:
    """A RouteIQ config (``routeiq:``) or policy file (``rules:`` of named allow/deny rules)."""
    if not isinstance(block, dict):
        return False
    rules = block.get("rules")
    policy = isinstance(rules, list) and all(isinstance(rule, dict) and "action" in rule for rule in rules)
    return "routeiq" in block or policy


def yaml_blocks() -> Iterator[tuple[str, int, dict[str, Any]]]:
    for page in sorted((ROOT / "docs").glob("*.md")):
        blocks = [code for kind, code in FENCE.findall(page.read_text()) if kind == "yaml"]
        for index, code in enumerate(blocks):
            skipped = any(name in code for (where, name) in NOT_STANDALONE if where == page.name)
            block = yaml.safe_load(code)
            if is_routeiq_file(block) and not skipped:
                yield page.name, index, block


def demo() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "config" / "demo.yaml").read_text()))


def check_config(config: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
    path = tmp / "config.yaml"
    text = yaml.safe_dump(config)
    path.write_text(text)
    # Secrets the example reads with os.environ/NAME get a placeholder, as a deployment would set them.
    secrets = {name: "placeholder" for name in re.findall(r"os\.environ/(\w+)", text)}
    command = [sys.executable, "-m", "routeiq", "check-config", str(path)]
    environ = {**os.environ, **secrets}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, cwd=tmp, env=environ
    )


EXAMPLES = list(yaml_blocks())


def test_there_are_examples_to_check() -> None:
    assert {page for page, _, _ in EXAMPLES} >= {"plugins.md", "policies.md", "quotas.md"}


@pytest.mark.parametrize("page,index,block", EXAMPLES, ids=[f"{p}#{i}" for p, i, _ in EXAMPLES])
def test_config_example_passes_check_config(
    page: str, index: int, block: dict[str, Any], tmp_path: Path
) -> None:
    config = demo()
    if "rules" in block:  # a policy file: the demo with this as its policy
        (tmp_path / "policy.yaml").write_text(yaml.safe_dump(block))
        config["routeiq"]["policy"] = {"file": "policy.yaml"}
    else:
        config["routeiq"].update(block["routeiq"])
        policy = config["routeiq"].get("policy", {}).get("file")
        if policy:  # the page's own policy example, wherever the config says it lives
            rules = next(b for p, _, b in EXAMPLES if p == "policies.md" and "rules" in b)
            (tmp_path / policy).write_text(yaml.safe_dump(rules))
    result = check_config(config, tmp_path)
    assert result.returncode == 0, f"{page} yaml block {index}:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {"ROUTEIQ_ADMIN_KEYS": ADMIN_KEY}
    with Gateway(demo(), tmp_path_factory.mktemp("docs"), env) as running:
        yield running


def test_key_example_creates_a_key_that_the_demo_serves(gateway: Gateway) -> None:
    text = (ROOT / "docs" / "keys.md").read_text()
    create = next(code for kind, code in FENCE.findall(text) if kind == "bash" and "/admin/keys" in code)
    words = shlex.split(create.split("\n# →")[0].replace("\\\n", " "), comments=True)
    body = words[words.index("-d") + 1]
    response = httpx.post(
        f"{gateway.url}/admin/keys",
        content=body,
        headers={"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    chat = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    served = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=chat,
        headers={"authorization": f"Bearer {response.json()['key']}"},
        timeout=30,
    )
    assert served.status_code == 200, served.text


def test_live_changes_example_has_the_shape_the_demo_answers_with(gateway: Gateway) -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    example = json.loads(
        next(code for kind, code in FENCE.findall(text) if kind == "json" and "subjects" in code)
    )
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    changed = httpx.put(
        f"{gateway.url}/admin/strategy", json={"strategy": "cost-based-routing"}, headers=admin, timeout=10
    )
    assert changed.status_code == 200, changed.text
    answer = httpx.get(f"{gateway.url}/admin/changes", headers=admin, timeout=10).json()
    assert set(answer) == set(example)
    (report,) = answer["instances"].values()  # one process
    assert set(report) == set(next(iter(example["instances"].values())))
    assert (
        report["applied"]["routing.strategies"]
        == changed.json()["version"]
        == answer["subjects"]["routing.strategies"]
    )
