"""Check the classifier as a router on RouteLLM's MMLU responses (a check, never training data).

``python -m routeiq.routing.classifier.evaluate [--data DIR]`` scores every prompt with p_strong
and with the prompt-length baseline, on a deterministic sha256 split, and prints AUROC (for "weak
model wrong and strong model right") and APGR (average performance-gap recovered over strong-call
fractions 0..100%). It answers one question: does the zero-config score beat prompt length?
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routeiq.routing.classifier.artifacts import DEFAULT_DATA_DIR
from routeiq.routing.classifier.centroid import CentroidClassifier
from routeiq.routing.learned.dataset import BENCHMARKS_DIR, load_dataset

DEFAULT_MMLU_DIR = BENCHMARKS_DIR / "routellm-mmlu"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
TEST_PERCENT = 30  # prompts whose sha256 falls in the first 30% of the hash space


@dataclass(frozen=True)
class Outcomes:
    prompts: list[str]
    weak: np.ndarray  # bool: weak model correct
    strong: np.ndarray  # bool: strong model correct


def in_test_split(prompt: str) -> bool:
    return int(hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8], 16) % 100 < TEST_PERCENT


def load_mmlu(directory: Path) -> Outcomes:
    """All subjects' rows (``.csv`` or ``.csv.gz``), minus prompts RouteLLM's training data contains."""
    dataset = load_dataset(directory)
    return Outcomes(
        list(dataset.prompts), dataset.column(WEAK).astype(bool), dataset.column(STRONG).astype(bool)
    )


def auroc(score: np.ndarray, label: np.ndarray) -> float:
    """Mann-Whitney AUROC with average ranks for ties."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), dtype=np.float64)
    sorted_scores = score[order]
    i = 0
    while i < len(score):
        j = i
        while j + 1 < len(score) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    positives = int(label.sum())
    negatives = len(label) - positives
    return float((ranks[label].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def apgr(score: np.ndarray, weak: np.ndarray, strong: np.ndarray, points: int = 101) -> float:
    """Mean performance-gap recovered when the top-f fraction by score goes to the strong model."""
    order = np.argsort(-score, kind="mergesort")
    weak_acc, strong_acc = float(weak.mean()), float(strong.mean())
    gain = (strong.astype(np.float64) - weak.astype(np.float64))[order]
    cumulative = np.concatenate(([0.0], np.cumsum(gain)))
    recovered = []
    for fraction in np.linspace(0.0, 1.0, points):
        k = round(fraction * len(score))
        accuracy = weak_acc + cumulative[k] / len(score)
        recovered.append((accuracy - weak_acc) / (strong_acc - weak_acc))
    return float(np.mean(recovered))


def report(
    scores: dict[str, np.ndarray], outcomes: Outcomes, mask: np.ndarray
) -> dict[str, dict[str, float]]:
    label = (~outcomes.weak & outcomes.strong)[mask]
    return {
        name: {
            "auroc": round(auroc(score[mask], label), 4),
            "apgr": round(apgr(score[mask], outcomes.weak[mask], outcomes.strong[mask]), 4),
        }
        for name, score in scores.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="AUROC/APGR of p_strong vs prompt length on RouteLLM MMLU.")
    parser.add_argument("--data", type=Path, default=DEFAULT_MMLU_DIR)
    parser.add_argument("--classifier", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    outcomes = load_mmlu(args.data)
    classifier = CentroidClassifier.load(args.classifier)
    scores = {
        "centroid_p_strong": classifier.p_strong(
            classifier.encoder.embed(outcomes.prompts), outcomes.prompts
        ),
        "length_chars": np.array([len(p) for p in outcomes.prompts], dtype=np.float64),
    }
    test = np.array([in_test_split(p) for p in outcomes.prompts])
    result = {
        "prompts": len(outcomes.prompts),
        "test_prompts": int(test.sum()),
        "test": report(scores, outcomes, test),
        "all": report(scores, outcomes, np.ones(len(test), dtype=bool)),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
