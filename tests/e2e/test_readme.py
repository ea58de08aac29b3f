"""The README's walkthrough, run against the demo config exactly as written.

Each ``sh`` block with a ``curl`` in the "Try it" section is sent to a gateway serving
``config/demo.yaml``; the ``text`` block that follows it lists the headers the README promises, and
every ``x-routeiq-*`` header there must come back with that value (timing headers excepted). The
Python snippet runs as written, with only the base URL pointed at the test's gateway.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.gateway import Gateway

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
# Headers whose value differs on every request.
VARIABLE = {"x-routeiq-overhead-ms", "x-request-id"}


@dataclass
class Example:
    body: str
    headers: dict[str, str]
    promised: dict[str, str]


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def curl_examples(text: str) -> list[Example]:
    blocks = FENCE.findall(text)
    examples = []
    for (kind, code), (_, promised) in itertools.pairwise(blocks):
        if kind != "sh" or "curl" not in code:
            continue
        words = shlex.split(code.replace("\\\n", " "))
        headers = dict(word.split(": ", 1) for flag, word in itertools.pairwise(words) if flag == "-H")
        body = words[words.index("-d") + 1]
        lines = [line.split(": ", 1) for line in promised.splitlines() if line.startswith("x-")]
        examples.append(Example(body, headers, {name: value for name, value in lines}))
    return examples


EXAMPLES = curl_examples(section("Try it"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    with Gateway(config, tmp_path_factory.mktemp("readme")) as gateway:
        yield gateway


def test_the_walkthrough_has_examples_with_promises() -> None:
    assert len(EXAMPLES) >= 3
    assert all(example.promised for example in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.body[60:110])
def test_curl_example_gives_the_documented_headers(demo: Gateway, example: Example) -> None:
    response = httpx.post(
        f"{demo.url}/v1/chat/completions", content=example.body, headers=example.headers, timeout=30
    )
    assert response.status_code == 200, response.text
    for name, value in example.promised.items():
        if name in VARIABLE:
            assert response.headers.get(name), name
        else:
            assert response.headers.get(name) == value, name


def test_python_example_runs_as_written(demo: Gateway) -> None:
    code = next(code for kind, code in FENCE.findall(README) if kind == "python" and "OpenAI(" in code)
    code = code.replace("http://localhost:4000/v1", f"{demo.url}/v1")
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    reply = namespace["reply"]
    assert reply.choices[0].message.content.startswith("Hello from the")  # type: ignore[attr-defined]


def test_dry_run_explains_the_first_example(demo: Gateway) -> None:
    first = EXAMPLES[0]
    decision = httpx.post(f"{demo.url}/v1/routeiq/route", content=first.body, headers=first.headers).json()
    assert decision["decision"]["served_model"] == first.promised["x-routeiq-served-model"]
    assert decision["reason"] == first.promised["x-routeiq-reason"]
    assert [c["deployment_id"] for c in decision["candidates"] if c["chosen"]] == [
        first.promised["x-routeiq-deployment-id"]
    ]
