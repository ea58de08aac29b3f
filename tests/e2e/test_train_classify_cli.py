"""``routeiq train`` and ``routeiq classify`` as a user runs them: subprocesses on real data files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MMLU_SMALL = ROOT / "tests" / "fixtures" / "routellm-mmlu-small"  # 387 prompts, 3 subjects
PROMPTS = [
    {"prompt": "What is the capital of France?"},
    {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "user", "content": "Prove that sqrt(2) is irrational."},
        ]
    },
    {"prompt": "Write a Python function that merges two sorted lists."},
]


def routeiq(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "routeiq", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def classify_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_train_then_classify_with_the_artifact(tmp_path: Path) -> None:
    out = tmp_path / "knn-router"
    env = {"TEST_ROUTER_KEY": "e2e-secret"}
    trained = routeiq(
        "train",
        "--algo",
        "knn",
        "--data",
        str(MMLU_SMALL),
        "--out",
        str(out),
        "--seed",
        "1",
        "--hmac-key-env",
        "TEST_ROUTER_KEY",
        env=env,
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.splitlines()[-1])
    assert summary["algo"] == "knn" and set(summary["heldout"]) == {"router", "prompt_length", "random"}
    assert 0.0 <= summary["heldout"]["router"]["apgr"] <= 1.5
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        manifest["weak"] == "mistralai/Mixtral-8x7B-Instruct-v0.1"
        and manifest["strong"] == "gpt-4-1106-preview"
    )
    assert (out / "manifest.hmac").is_file()

    stdin = "".join(json.dumps(prompt) + "\n" for prompt in PROMPTS)
    lines = classify_lines(
        routeiq(
            "classify",
            "--strategy",
            "llmrouter-knn",
            "--model-path",
            str(out),
            "--hmac-key-env",
            "TEST_ROUTER_KEY",
            stdin=stdin,
            env=env,
        )
    )
    assert len(lines) == len(PROMPTS)
    for line in lines:
        assert line["strategy"] == "llmrouter-knn"
        assert line["tier"] in ("simple", "complex")
        assert 0.0 <= float(line["p_strong"]) <= 1.0 and 0.0 <= float(line["confidence"]) <= 1.0  # type: ignore[arg-type]
        assert isinstance(line["category"], str)

    refused = routeiq(
        "classify",
        "--strategy",
        "llmrouter-knn",
        "--model-path",
        str(out),
        "--hmac-key-env",
        "TEST_ROUTER_KEY",
        stdin=stdin,
        env={"TEST_ROUTER_KEY": "wrong"},
    )
    assert refused.returncode == 2 and "HMAC" in refused.stderr and not refused.stdout


def test_classify_centroid_from_a_file_keeps_order(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    prompts = [*PROMPTS, {"nothing": "here"}, *PROMPTS]
    path.write_text("".join(json.dumps(prompt) + "\n" for prompt in prompts))
    result = routeiq("classify", "--input", str(path))
    assert result.returncode == 1  # one bad line
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(prompts)
    assert "error" in lines[3] and "line 4" in str(lines[3]["error"])
    good = [line for line in lines if "error" not in line]
    assert all(line["strategy"] == "llmrouter-centroid" for line in good)
    assert good[:3] == good[3:], "same prompt, same answer, same position"
    assert {"p_strong", "tier", "category", "confidence"} <= set(good[0])


def test_train_reports_bad_data_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    result = routeiq("train", "--algo", "mlp", "--data", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "scores" in result.stderr and "Traceback" not in result.stderr
