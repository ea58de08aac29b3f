"""The logistic (``linear``) learned router: cross-validated L2 in the manifest, calibrated, round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.routing_domains import GROUPS, mmlu_group
from routeiq.routing.catalogue import find_strategy
from routeiq.routing.learned import HashingEncoder, RoutingDataset, load_router, save_router, train_router
from routeiq.routing.learned.algorithms import Pair, algorithm
from routeiq.routing.learned.algorithms.linear import L2_GRID
from routeiq.routing.learned.commands import as_trained
from routeiq.routing.learned.dataset import BENCHMARKS_DIR, csv_files, stem
from routeiq.routing.learned.train import DEFAULT_FEATURE_WEIGHT, FEATURE_WEIGHT_GRID


def noisy_problem(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Strong wins on 20 % of rows, more often when feature 0 is high (in units far from 1)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(0, 1, (n, 6)) * np.r_[100.0, 1, 1, 1, 1, 0.01]
    wins = rng.random(n) < 1 / (1 + np.exp(-(features[:, 0] / 100.0 * 1.5 - 1.8)))
    return features, np.column_stack([(~wins).astype(float), np.ones(n)])


def test_l2_is_chosen_by_cross_validation_and_probabilities_keep_the_base_rate() -> None:
    features, scores = noisy_problem(600, seed=4)
    scorer = algorithm("linear").fit(features, scores, Pair(weak=0, strong=1), 0, {})
    params = scorer.params()
    assert [row["l2"] for row in params["cv"]] == list(L2_GRID)
    best = max(params["cv"], key=lambda row: (row["cv_apgr"], row["l2"]))
    assert params["l2"] == best["l2"]
    p_strong = scorer.predict(features)[:, -1]
    wins = scores[:, 0] == 0
    # Balanced training, then the offset refitted: the mean p_strong is the mean "strong wins, ties
    # half" target again (calibration in the large), not the balanced fit's 0.5-ish.
    target = (1.0 + scores[:, 1] - scores[:, 0]) / 2.0
    assert abs(p_strong.mean() - target.mean()) < 1e-6
    assert p_strong[wins].mean() > p_strong[~wins].mean() + 0.05
    fixed = algorithm("linear").fit(features, scores, Pair(weak=0, strong=1), 0, {"l2": 3.0}).params()
    assert fixed == {"l2": 3.0}  # a given l2 skips the search


def test_linear_router_round_trips_with_its_search_in_the_manifest(tmp_path: Path) -> None:
    easy = [f"hello there friend, how are you doing today number {i}" for i in range(60)]
    hard = [f"prove the integral of the polynomial series converges, lemma {i}" for i in range(60)]
    data = RoutingDataset(
        tuple(easy + hard), ("weak", "strong"), np.array([[1.0, 1.0]] * 60 + [[0.0, 1.0]] * 60)
    )
    router = train_router(data, "linear", HashingEncoder(64), seed=1)
    path = save_router(router, tmp_path / "linear")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["algo"] == "linear" and manifest["params"]["l2"] in L2_GRID
    assert len(manifest["params"]["cv"]) == len(L2_GRID)
    loaded = load_router(path)
    texts = ["hello friend", "prove the lemma converges"]
    np.testing.assert_allclose(loaded.predict(texts).scores, router.predict(texts).scores)
    p_strong = loaded.p_strong(texts)
    assert p_strong[1] > p_strong[0]
    spec = find_strategy("llmrouter-linear")
    assert spec is not None and spec.algorithm == "linear"


def test_every_vendored_mmlu_subject_is_in_exactly_one_group() -> None:
    subjects = [stem(path) for path in csv_files(BENCHMARKS_DIR / "routellm-mmlu")]
    assert len(subjects) == 57
    assert {mmlu_group(subject) for subject in subjects} == set(GROUPS)
    assert sum(len(group) for group in GROUPS.values()) == 57


def test_cross_validation_in_train_searches_again_instead_of_reusing_the_chosen_l2() -> None:
    trained = {"l2": 10.0, "cv": [{"l2": 1.0, "cv_auroc": 0.6}, {"l2": 10.0, "cv_auroc": 0.7}]}
    assert as_trained(trained) == {}
    assert as_trained({"l2": 3.0}) == {"l2": 3.0}  # given, not searched: kept
    assert as_trained({"k": 8}) == {"k": 8}  # knn's adapted k: kept


def test_knn_chooses_k_by_cross_validation_unless_given() -> None:
    features, scores = noisy_problem(900, seed=6)
    scorer = algorithm("knn").fit(features / np.r_[100.0, 1, 1, 1, 1, 0.01], scores, Pair(0, 1), 0, {})
    params = scorer.params()
    assert [row["k"] for row in params["cv"]] == [16, 32, 64, 128]  # 256 > a quarter of a fold's rows
    assert params["k"] == max(params["cv"], key=lambda row: (row["cv_apgr"], row["k"]))["k"]
    assert algorithm("knn").fit(features, scores, Pair(0, 1), 0, {"k": 8}).params() == {"k": 8}
    assert as_trained(params) == {}  # training-side CV searches k again in every fold


def test_ensemble_mixes_linear_and_knn_by_cross_validation_and_round_trips(tmp_path: Path) -> None:
    features, scores = noisy_problem(900, seed=6)
    scaled = features / np.r_[100.0, 1, 1, 1, 1, 0.01]
    scorer = algorithm("ensemble").fit(scaled, scores, Pair(0, 1), 0, {})
    params = scorer.params()
    assert [row["knn_weight"] for row in params["cv"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    best = max(params["cv"], key=lambda row: (row["cv_apgr"], -abs(row["knn_weight"] - 0.5)))
    assert params["knn_weight"] == best["knn_weight"]
    assert "l2" in params["linear"] and "k" in params["knn"]  # each member's own search, recorded
    mixed = scorer.predict(scaled)
    weight = params["knn_weight"]
    np.testing.assert_allclose(
        mixed, (1 - weight) * scorer.linear.predict(scaled) + weight * scorer.knn.predict(scaled)
    )
    assert as_trained(params) == {}  # training-side CV fits members and weight afresh in each fold
    fixed = algorithm("ensemble").fit(scaled, scores, Pair(0, 1), 0, {"knn_weight": 0.25})
    assert fixed.params()["knn_weight"] == 0.25 and "cv" not in fixed.params()
    easy = [f"hello there friend, how are you doing today number {i}" for i in range(60)]
    hard = [f"prove the integral of the polynomial series converges, lemma {i}" for i in range(60)]
    data = RoutingDataset(
        tuple(easy + hard), ("weak", "strong"), np.array([[1.0, 1.0]] * 60 + [[0.0, 1.0]] * 60)
    )
    router = train_router(data, "ensemble", HashingEncoder(64), seed=1)
    loaded = load_router(save_router(router, tmp_path / "ensemble"))
    texts = ["hello friend", "prove the lemma converges"]
    np.testing.assert_allclose(loaded.predict(texts).scores, router.predict(texts).scores)
    assert loaded.info.params == router.info.params


def test_knn_cue_weight_is_chosen_by_cross_validation_on_the_training_rows() -> None:
    # Same words, hard ones longer and full of numbers: only the surface cues tell them apart.
    rng = np.random.default_rng(2)
    hard = rng.random(240) < 0.4
    prompts = tuple(
        f"item {i}: " + ("compute 12 + 34 * 56 / 78 then 90 - 12 again and again " if h else "say hi ")
        for i, h in enumerate(hard)
    )
    scores = np.column_stack([(~hard).astype(float), np.ones(240)])
    data = RoutingDataset(prompts, ("weak", "strong"), scores)
    router = train_router(data, "knn", HashingEncoder(64))
    search = router.info.training["feature_weight_cv"]
    assert [row["feature_weight"] for row in search] == list(FEATURE_WEIGHT_GRID)
    best = max(search, key=lambda row: (row["cv_apgr"], -row["feature_weight"]))
    assert router.info.feature_weight == best["feature_weight"]
    assert router.features.weight == router.info.feature_weight
    given = train_router(data, "knn", HashingEncoder(64), feature_weight=0.5)
    assert given.info.feature_weight == 0.5 and "feature_weight_cv" not in given.info.training
    linear = train_router(data, "linear", HashingEncoder(64))  # standardises every column itself
    assert linear.info.feature_weight == DEFAULT_FEATURE_WEIGHT
    assert "feature_weight_cv" not in linear.info.training
