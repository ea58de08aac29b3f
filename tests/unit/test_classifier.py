"""The shipped zero-config classifier: artifact integrity, obvious verdicts, determinism, rebuild."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from routeiq.routing.classifier import (
    CATEGORIES,
    DEFAULT_DATA_DIR,
    CentroidClassifier,
    Classification,
    ClassifierUnavailable,
    StaticEncoder,
)
from routeiq.routing.classifier.artifacts import CENTROIDS_FILE, METADATA_FILE, verify
from routeiq.routing.classifier.build import build


@pytest.fixture(scope="module")
def classifier() -> CentroidClassifier:
    return CentroidClassifier.load()


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "classifier"
    shutil.copytree(DEFAULT_DATA_DIR, target)
    return target


def test_shipped_artifacts_verify() -> None:
    meta = verify(DEFAULT_DATA_DIR)
    assert meta["encoder"]["dimension"] > 0
    assert "encoder/embeddings.npy" in meta["files"]
    assert set(meta["prototype_counts"]["categories"]) == set(CATEGORIES)


def test_tampered_file_is_rejected(data_copy: Path) -> None:
    path = data_copy / CENTROIDS_FILE
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ClassifierUnavailable, match="sha256 mismatch"):
        CentroidClassifier.load(data_copy)


@pytest.mark.parametrize(
    "name", ["encoder/embeddings.npy", "encoder/tokenizer.json", CENTROIDS_FILE, METADATA_FILE]
)
def test_missing_file_is_rejected(data_copy: Path, name: str) -> None:
    (data_copy / name).unlink()
    with pytest.raises(ClassifierUnavailable):
        CentroidClassifier.load(data_copy)


def test_missing_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ClassifierUnavailable):
        CentroidClassifier.load(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "text",
    ["What is the capital of France?", "hi there", "translate 'good morning' to Spanish"],
)
def test_obvious_simple_prompts(classifier: CentroidClassifier, text: str) -> None:
    result = classifier.classify(text)
    assert result.tier == "simple", result
    assert result.p_strong < 0.5


@pytest.mark.parametrize(
    "text",
    [
        "Design a sharded, exactly-once ledger service with idempotent transfers across regions, "
        "and prove its invariants hold under partitions and retries.",
        "Prove that there are infinitely many primes of the form 4k+3.",
    ],
)
def test_obvious_complex_prompts(classifier: CentroidClassifier, text: str) -> None:
    result = classifier.classify(text)
    assert result.tier == "complex", result
    assert result.p_strong > 0.5


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Translate 'where is the train station' into German.", "translation"),
        ("write a python function that parses an ISO date string", "code_generation"),
        ("Write a poem about the moon over a quiet harbour.", "creative_writing"),
    ],
)
def test_categories(classifier: CentroidClassifier, text: str, category: str) -> None:
    assert classifier.classify(text).category == category


def test_classification_fields(classifier: CentroidClassifier) -> None:
    result = classifier.classify("Summarise this article about climate policy.")
    assert isinstance(result, Classification)
    assert result.tier in {"simple", "complex"}
    assert result.category in CATEGORIES
    assert 0.0 <= result.p_strong <= 1.0
    assert 0.0 <= result.confidence <= 1.0


def test_borderline_goes_to_complex_with_low_confidence(classifier: CentroidClassifier) -> None:
    wide = CentroidClassifier.load(borderline_margin=0.49)
    for text in ["hi there", "What is 7 times 8?", "Prove Fermat's little theorem."]:
        result = wide.classify(text)
        if abs(result.p_strong - 0.5) < 0.49:
            assert result.tier == "complex"
            assert result.confidence <= 0.5
    clear = classifier.classify("hi there")
    assert clear.confidence >= 0.5 + classifier.borderline_margin


def test_classify_many_matches_classify(classifier: CentroidClassifier) -> None:
    texts = ["hi there", "", "Prove that sqrt(2) is irrational.", "Translate 'cat' to French.", "x" * 5000]
    assert classifier.classify_many(texts) == [classifier.classify(text) for text in texts]


def test_embeddings_unit_norm_and_deterministic(classifier: CentroidClassifier) -> None:
    encoder = classifier.encoder
    texts = ["What is the capital of France?", "Write a haiku about rain.", "¿Dónde está la biblioteca?"]
    first = encoder.embed(texts)
    assert first.shape == (3, encoder.dimension)
    assert first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    again = StaticEncoder.load(DEFAULT_DATA_DIR / "encoder").embed(texts)
    assert np.array_equal(first, again)
    # Batch and single-text paths agree.
    assert np.array_equal(first[1], encoder.embed([texts[1]])[0])


def test_empty_text_embeds_to_zero(classifier: CentroidClassifier) -> None:
    vector = classifier.encoder.embed([""])
    assert vector.shape == (1, classifier.encoder.dimension)
    assert not vector.any()
    assert classifier.encoder.embed([]).shape == (0, classifier.encoder.dimension)


def test_build_is_reproducible(tmp_path: Path) -> None:
    build(DEFAULT_DATA_DIR, tmp_path)
    for name in (CENTROIDS_FILE, METADATA_FILE):
        assert (tmp_path / name).read_bytes() == (DEFAULT_DATA_DIR / name).read_bytes(), name
