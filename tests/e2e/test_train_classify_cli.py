"""``routeiq train`` and ``routeiq classify`` as a user runs them: subprocesses on real data files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    heldout = summary["heldout"]
    assert summary["algo"] == "knn" and set(heldout) == {
        "router",
        "prompt_length",
        "random",
        "gain_over_length",
    }
    gain = heldout["gain_over_length"]
    assert gain["apgr"] == pytest.approx(heldout["router"]["apgr"] - heldout["prompt_length"]["apgr"])
    assert 0.0 < gain["standard_error"] < 0.5
    assert 0.0 <= summary["heldout"]["router"]["apgr"] <= 1.5
    assert summary["cv"]["folds"] == 5 and 0.0 <= summary["cv"]["auroc"] <= 1.0
    assert "cross-validated AUROC (5-fold" in trained.stdout
    assert "knn vs prompt_length: APGR " in trained.stdout
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


def write_jsonl_slice(path: Path, rows: int) -> Path:
    """The first ``rows`` fixture prompts as JSON lines, the format ``routeiq train`` documents."""
    with (MMLU_SMALL / "mmlu_anatomy.csv").open(newline="", encoding="utf-8") as handle:
        header, *records = csv.reader(handle)
    lines = [
        {
            "prompt": record[0],
            "scores": {model: value == "True" for model, value in zip(header[1:], record[1:], strict=True)},
        }
        for record in records[:rows]
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_train_on_too_little_data_adapts_k_warns_and_reports_cross_validated_auroc(tmp_path: Path) -> None:
    data = write_jsonl_slice(tmp_path / "small.jsonl", 41)
    out = tmp_path / "knn-small"
    trained = routeiq("train", "--algo", "knn", "--param", "k=64", "--data", str(data), "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    assert "warning: knn k=64" in trained.stderr and "using k=8" in trained.stderr  # 32 train rows / 4
    assert "too few to learn from" in trained.stderr
    lines = trained.stdout.splitlines()
    assert any(line.startswith("cross-validated AUROC (5-fold, 32 training prompts): ") for line in lines)
    summary = json.loads(lines[-1])
    assert summary["params"] == {"k": 8}
    assert summary["cv"]["folds"] == 5 and summary["cv"]["rows"] == 32
    assert 0.0 <= summary["cv"]["auroc"] <= 1.0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"] == {"k": 8}
    assert manifest["training"]["cv"] == summary["cv"]
    assert manifest["training"]["warnings"] == summary["warnings"] and summary["warnings"]

    # The artifact tells prompts apart (with k=64 over 32 rows every prompt got the same p_strong).
    stdin = data.read_text()
    classified = classify_lines(
        routeiq("classify", "--strategy", "llmrouter-knn", "--model-path", str(out), stdin=stdin)
    )
    assert len({line["p_strong"] for line in classified}) > 1


def test_train_refuses_an_unknown_param_and_can_skip_cross_validation(tmp_path: Path) -> None:
    data = write_jsonl_slice(tmp_path / "small.jsonl", 60)
    typo = routeiq(
        "train", "--algo", "knn", "--param", "kk=5", "--data", str(data), "--out", str(tmp_path / "a")
    )
    assert typo.returncode == 2 and "no parameter 'kk'" in typo.stderr and "Traceback" not in typo.stderr
    assert not (tmp_path / "a").exists()
    plain = routeiq(
        "train",
        "--algo",
        "knn",
        "--param",
        "k=3",
        "--cv-folds",
        "0",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "b"),
    )
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout.splitlines()[-1])["cv"] is None
    assert "cross-validated" not in plain.stdout and "warning: knn" not in plain.stderr
