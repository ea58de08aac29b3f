"""The lexical block of a learned router's features: hashed tf-idf reduced by LSA, chosen by training CV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routeiq.routing.learned import HashingEncoder, RoutingDataset, load_router, save_router, train_router
from routeiq.routing.learned.artifacts import WEIGHTS
from routeiq.routing.learned.features import FeatureSpec
from routeiq.routing.learned.lexical import BUCKETS, LexicalSpec, _rows, _tfidf_dense, term_counts
from routeiq.routing.learned.train import LEXICAL_RANK, LEXICAL_WEIGHT_GRID

SUBJECTS = {
    "law": "the plaintiff sued for negligence under tort law and the court held the defendant liable",
    "biology": "the enzyme catalyses the reaction in the mitochondria of the eukaryotic cell membrane",
    "maths": "find the eigenvalue of the matrix and the determinant of its inverse over the field",
    "history": "the treaty ended the war and the empire ceded its provinces to the kingdom after",
}


def corpus(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Prompts from four subjects (their words, shuffled, plus noise words); the subject of each."""
    rng = np.random.default_rng(seed)
    names = list(SUBJECTS)
    labels = rng.integers(0, len(names), n)
    texts = []
    for i, label in enumerate(labels):
        words = SUBJECTS[names[label]].split()
        picked = rng.choice(words, size=8, replace=False).tolist()
        texts.append(" ".join([*picked, f"w{rng.integers(0, 500)}", f"question {i}"]))
    return texts, labels


def test_terms_are_hashed_unigrams_and_bigrams_stably() -> None:
    counts = term_counts("The cat, the CAT")
    assert sum(counts.values()) == 4 + 3  # four words, three bigrams; case folded
    assert max(counts.values()) >= 2  # "the" twice and "cat" twice
    assert term_counts("the cat the cat") == counts  # punctuation is not a term
    assert all(0 <= bucket < BUCKETS for bucket in counts)


def test_lsa_is_deterministic_unit_length_and_keeps_subjects_apart() -> None:
    texts, labels = corpus(400, seed=1)
    spec = LexicalSpec.fit(texts, rank=16, weight=0.5, seed=3)
    again = LexicalSpec.fit(texts, rank=16, weight=0.5, seed=3)
    np.testing.assert_array_equal(spec.components, again.components)
    vectors = spec.transform(texts)
    assert vectors.shape == (400, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 0.5, rtol=1e-5)
    similarity = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    assert similarity[same].mean() > similarity[~same].mean() + 0.1


def test_randomized_svd_finds_the_top_right_singular_vectors() -> None:
    texts, _ = corpus(300, seed=2)
    spec = LexicalSpec.fit(texts, rank=4, weight=1.0, seed=0)
    dense = _tfidf_dense(_rows(texts), spec.idf).astype(np.float64)
    exact = np.linalg.svd(dense, full_matrices=False)[2][:4].T  # (BUCKETS, 4)
    # Same subspace: projecting the exact vectors onto the found ones keeps (almost) all of them.
    found = spec.components.astype(np.float64)
    np.testing.assert_allclose(found.T @ found, np.eye(4), atol=1e-4)
    assert np.linalg.norm(found.T @ exact, axis=0).min() > 0.99


def test_arrays_round_trip_and_a_wrong_shape_is_refused() -> None:
    texts, _ = corpus(300, seed=3)
    spec = LexicalSpec.fit(texts, rank=8, weight=1.0)
    restored = LexicalSpec.from_arrays(spec.arrays(), 1.0)
    np.testing.assert_array_equal(restored.transform(texts[:5]), spec.transform(texts[:5]))
    bad = spec.arrays() | {"lexical_components": spec.components[:100]}
    with pytest.raises(ValueError, match="vocabulary"):
        LexicalSpec.from_arrays(bad, 1.0)


def test_feature_spec_appends_the_lexical_block_after_the_cues() -> None:
    texts, _ = corpus(300, seed=4)
    embeddings = HashingEncoder(32).embed(texts)
    lexical = LexicalSpec.fit(texts, rank=8, weight=1.0)
    spec = FeatureSpec.fit(texts, weight=1.0).with_lexical(lexical, 0.5)
    assert spec.extra == 9 + 8 and spec.lexical_weight == 0.5
    features = spec.transform(texts, embeddings)
    assert features.shape == (300, 32 + 9 + 8)
    np.testing.assert_allclose(features[:, -8:], lexical.transform(texts) * 0.5, rtol=1e-5, atol=1e-6)
    assert spec.with_lexical(lexical, 0.0).extra == 9  # 0: no block
    no_cues = FeatureSpec.fit(texts, weight=0.0).with_lexical(lexical, 1.0)
    assert no_cues.transform(texts, embeddings).shape == (300, 32 + 8)


def subject_dataset(n: int = 320) -> RoutingDataset:
    """The strong model wins on law and maths, ties elsewhere: words tell the subject."""
    texts, labels = corpus(n, seed=5)
    hard = np.isin(labels, [0, 2])
    scores = np.column_stack([(~hard).astype(float), np.ones(n)])
    return RoutingDataset(tuple(texts), ("weak", "strong"), scores)


@pytest.mark.parametrize("algo", ["knn", "linear"])
def test_the_lexical_weight_is_chosen_by_cross_validation_on_the_training_rows(algo: str) -> None:
    data = subject_dataset()
    router = train_router(data, algo, HashingEncoder(16), seed=1)
    search = router.info.training["lexical_weight_cv"]
    grid = list(LEXICAL_WEIGHT_GRID) if algo == "knn" else [0.0, 1.0]
    assert [row["lexical_weight"] for row in search] == grid
    best = max(search, key=lambda row: (row["cv_apgr"], -row["lexical_weight"]))
    assert router.info.lexical_weight == best["lexical_weight"]
    assert router.features.lexical_weight == router.info.lexical_weight
    off = train_router(data, algo, HashingEncoder(16), seed=1, lexical_weight=0.0)
    assert off.info.lexical_weight == 0.0 and off.features.lexical is None
    assert "lexical_weight_cv" not in off.info.training
    given = train_router(data, algo, HashingEncoder(16), seed=1, lexical_weight=0.5)
    assert given.info.lexical_weight == 0.5 and "lexical_weight_cv" not in given.info.training
    assert given.features.lexical is not None and given.features.lexical.rank == LEXICAL_RANK


def test_other_algorithms_and_small_data_train_without_words() -> None:
    assert train_router(subject_dataset(), "mlp", HashingEncoder(16)).info.lexical_weight == 0.0
    small = train_router(subject_dataset(200), "knn", HashingEncoder(16))  # < 4 x rank rows: no LSA
    assert small.features.lexical is None and "lexical_weight_cv" not in small.info.training
    asked = train_router(subject_dataset(200), "knn", HashingEncoder(16), lexical_weight=1.0)
    assert asked.features.lexical is None and asked.info.lexical_weight == 0.0
    assert any("too few for the lexical block" in note for note in asked.info.training["warnings"])


def test_a_router_with_words_round_trips_and_an_older_manifest_still_loads(tmp_path: Path) -> None:
    router = train_router(subject_dataset(), "ensemble", HashingEncoder(16), seed=2, lexical_weight=1.0)
    path = save_router(router, tmp_path / "ensemble")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["features"]["lexical_weight"] == 1.0
    assert manifest["features"]["extra"] == 9 + LEXICAL_RANK
    with np.load(path / WEIGHTS, allow_pickle=False) as archive:
        assert archive["features.lexical_components"].shape == (BUCKETS, LEXICAL_RANK)
    assert (path / WEIGHTS).stat().st_size < 3_000_000
    loaded = load_router(path)
    texts = ["the court held the defendant liable in tort", "the treaty ended the war"]
    np.testing.assert_allclose(loaded.predict(texts).scores, router.predict(texts).scores, rtol=1e-6)
    plain = train_router(subject_dataset(), "knn", HashingEncoder(16), lexical_weight=0.0)
    older = save_router(plain, tmp_path / "older")
    manifest = json.loads((older / "manifest.json").read_text())
    del manifest["features"]["lexical_weight"]  # written before the lexical block existed
    (older / "manifest.json").write_text(json.dumps(manifest))
    restored = load_router(older)
    assert restored.features.lexical is None and restored.info.lexical_weight == 0.0
