"""The cascade's answer verifier: its cues, training with a CV-chosen L2, a verified artifact, the CLI."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from routeiq.cli import main as cli_main
from routeiq.routing.learned.answers import load_answers
from routeiq.routing.learned.artifacts import ArtifactError
from routeiq.routing.learned.verifier import (
    load_verifier,
    out_of_fold,
    save_verifier,
    train_verifier,
    verifier_auroc,
)
from routeiq.routing.learned.verifier_features import (
    VERIFIER_FEATURES,
    arithmetic,
    equation_checks,
    final_number,
    verifier_cues,
)

WEAK, STRONG = "small-model", "big-model"


def test_arithmetic_is_checked_without_eval() -> None:
    assert arithmetic("3 x 60") == 180.0
    assert arithmetic("(15 + 25) / 2") == 20.0
    assert arithmetic("1,200 \u00d7 3") == 3600.0  # the multiplication sign
    assert arithmetic("42") is None  # no operator: nothing to check
    assert arithmetic("__import__('os').system('true') + 1") is None
    assert arithmetic("2 ** 1000000") is None  # only + - * /
    # "3 x 60 = <<" states no result; "3*60=180" is right, "15 + 25 = 30" is wrong.
    assert equation_checks("So 3 x 60 = <<3*60=180>>180 and 15 + 25 = 30.") == (2, 1)
    assert final_number("He runs 540 m.\n#### 540") == 540.0
    assert final_number("The answer is 2.5 bolts") == 2.5
    assert final_number("no numbers here") is None


def triples(n: int, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """Right answers do their arithmetic right and end with '#### <n>'; wrong ones slip and hedge."""
    rng = np.random.default_rng(seed)
    prompts, answers, correct = [], [], []
    for i in range(n):
        a, b = int(rng.integers(2, 90)), int(rng.integers(2, 90))
        prompts.append(f"Tom has {a} apples and buys {b} more, problem {i}. How many now?")
        right = bool(rng.random() < 0.6)
        if right:
            answers.append(f"He has {a} + {b} = {a + b} apples.\n#### {a + b}")
        else:
            answers.append(f"However, assuming he lost some, {a} + {b} = {a + b + 7}, roughly {a}.")
        correct.append(right)
    return prompts, answers, np.array(correct)


def test_verifier_ranks_right_answers_above_wrong_ones_and_round_trips(tmp_path: Path) -> None:
    prompts, answers, correct = triples(200, seed=1)
    verifier = train_verifier(prompts, answers, correct, seed=0)
    assert verifier.l2 in {row["l2"] for row in verifier.search}  # chosen by CV on these rows
    test_prompts, test_answers, test_correct = triples(80, seed=2)
    p_correct = verifier.p_correct(test_prompts, test_answers)
    assert verifier_auroc(p_correct, test_correct) > 0.95
    path = save_verifier(verifier, tmp_path / "verifier", hmac_key="k")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "routeiq-answer-verifier" and manifest["features"] == list(VERIFIER_FEATURES)
    loaded = load_verifier(path, hmac_key="k")
    np.testing.assert_allclose(loaded.p_correct(test_prompts, test_answers), p_correct)
    with pytest.raises(ArtifactError, match="HMAC"):
        load_verifier(path, hmac_key="other")
    weights = path / "weights.npz"
    weights.write_bytes(weights.read_bytes() + b"tampered")
    with pytest.raises(ArtifactError, match="sha256"):
        load_verifier(path)


def test_out_of_fold_scores_every_answer_and_a_one_class_set_is_refused() -> None:
    prompts, answers, correct = triples(120, seed=3)
    scores = out_of_fold(prompts, answers, correct, folds=3)
    assert scores.shape == (120,) and verifier_auroc(scores, correct) > 0.9
    assert verifier_cues(prompts[:2], answers[:2]).shape == (2, len(VERIFIER_FEATURES))
    with pytest.raises(ValueError, match="labelled the same"):
        train_verifier(prompts[:5], answers[:5], np.ones(5, dtype=bool))


def write_answers_csv(folder: Path, n: int = 150) -> Path:
    folder.mkdir()
    prompts, answers, correct = triples(n, seed=5)
    with gzip.open(folder / "maths.csv.gz", "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", WEAK, STRONG, f"{WEAK}_response", f"{STRONG}_response"])
        for prompt, answer, right in zip(prompts, answers, correct, strict=True):
            writer.writerow([prompt, str(bool(right)), "True", answer, "a strong answer"])
    (folder / "contaminated_prompts.jsonl").write_text(json.dumps({"eval_prompt": prompts[0]}) + "\n")
    return folder


def test_answers_are_read_from_response_columns_and_the_cli_trains_a_verifier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_answers_csv(tmp_path / "data")
    answers = load_answers(folder)
    assert answers.model == WEAK and len(answers) == 149  # the contaminated prompt is dropped
    assert load_answers(folder, STRONG).correct.all()
    code = cli_main(
        [
            "train",
            "--algo",
            "verifier",
            "--data",
            str(folder),
            "--out",
            str(tmp_path / "v"),
            "--cv-folds",
            "3",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["model"] == WEAK and report["cv_auroc"] > 0.9
    assert load_verifier(tmp_path / "v").training["cv_auroc"] == report["cv_auroc"]
