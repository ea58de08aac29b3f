"""``make bench-routing``'s judging and report, on a small synthetic domain (the whole run takes
minutes): every row carries its standard error and its paired gain over prompt length, the verdicts
print them with the mixing ceiling, and the ceiling is the best subset."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.routing import _judge, mix_ceiling, render, verdicts
from routeiq.routing import quality
from routeiq.routing.learned.dataset import RoutingDataset

PAIR = ("weak", "strong")


def synthetic(n: int = 400) -> tuple[RoutingDataset, dict[str, np.ndarray]]:
    """A domain where the strong model wins on a third of the prompts, prompt length says little,
    knn sees the wins through some noise and linear through more."""
    rng = np.random.default_rng(7)
    wins = rng.random(n) < 1 / 3
    weak = np.where(wins, 0.0, (rng.random(n) < 0.8).astype(float))
    prompts = tuple(f"prompt {i} " + "x" * int(rng.integers(1, 200)) for i in range(n))
    dataset = RoutingDataset(prompts, PAIR, np.column_stack([weak, np.maximum(weak, wins)]))
    scores = {
        "random": rng.random(n),
        "prompt_length": np.array([len(prompt) for prompt in prompts], dtype=np.float64),
        "knn": wins + rng.normal(0.0, 0.6, n),
        "linear": wins + rng.normal(0.0, 1.2, n),
    }
    return dataset, scores


def report(dataset: RoutingDataset, scores: dict[str, np.ndarray]) -> dict[str, Any]:
    rows = _judge(scores, dataset, PAIR)
    ceiling = mix_ceiling(scores, dataset, PAIR)
    point = {
        "strong_share": 0.1,
        "cascade_pgr": 0.3,
        "router_pgr": 0.2,
        "cascade_cost": 0.15,
        "router_cost": 0.1,
    }
    return {
        "split": {"train": 0, "test": len(dataset)},
        "encoder": {"id": "synthetic", "dimension": 0},
        "results": rows,
        "domains": {"gsm8k-a (cv)": rows, "gsm8k-a": rows},
        "mix_ceilings": {"in-domain": ceiling, "gsm8k-a (cv)": ceiling, "gsm8k-a": ceiling},
        "cascade": {
            "verifier_auroc": 0.7,
            "cascade": rows["knn"],
            "best_prompt_only": "knn",
            "best_prompt_only_quality": rows["knn"],
            "curve": [point],
            "weak_cost_ratio": 0.05,
        },
        "classify_latency": None,
        "notes": [],
        "seconds": 1.0,
    }


def test_rows_carry_their_standard_error_and_paired_gain_over_length() -> None:
    dataset, scores = synthetic()
    rows = _judge(scores, dataset, PAIR)
    weak, strong = dataset.column("weak"), dataset.column("strong")
    assert rows["knn"]["apgr"] == pytest.approx(quality.apgr(scores["knn"], weak, strong))
    assert 0.0 < rows["knn"]["apgr_se"] < 0.1
    gain, spread = rows["knn"]["vs_length"]
    assert gain == pytest.approx(rows["knn"]["apgr"] - rows["prompt_length"]["apgr"])
    assert gain > 3 * spread > 0  # knn sees the wins, length does not
    assert "vs_length" not in rows["prompt_length"]


def test_the_mixing_ceiling_is_the_best_subset_of_learned_routers() -> None:
    dataset, scores = synthetic()
    ceiling = mix_ceiling(scores, dataset, PAIR)
    weak, strong = dataset.column("weak"), dataset.column("strong")
    singles = {name: quality.apgr(scores[name], weak, strong) for name in ("knn", "linear")}
    both = quality.apgr(
        quality.average_ranks(scores["knn"]) + quality.average_ranks(scores["linear"]), weak, strong
    )
    assert ceiling["apgr"] == pytest.approx(max(*singles.values(), both))
    assert set(ceiling["members"]) <= {"knn", "linear"}  # baselines are never mixed in


def test_verdicts_and_report_print_the_noise_and_the_ceiling() -> None:
    dataset, scores = synthetic()
    made = report(dataset, scores)
    lines = {target: detail for target, _, detail in verdicts(made)}
    best = lines["best learned router APGR >= 0.7"]
    assert best.startswith("knn ") and "±" in best and "best mix picked on these prompts" in best
    text = render(made)
    assert "vs length ± se" in text and text == "\n".join(line.rstrip() for line in text.split("\n"))
