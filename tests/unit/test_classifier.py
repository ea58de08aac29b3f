"""The shipped zero-config classifier: artifact integrity, obvious verdicts, determinism, rebuild."""

from __future__ import annotations

import json
import shutil
import sys
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
from routeiq.routing.classifier.artifacts import (
    CENTROIDS_FILE,
    FORMAT_VERSION,
    METADATA_FILE,
    PROTOTYPES_FILE,
    encoder_kind,
    sha256_file,
    verify,
)
from routeiq.routing.classifier.build import build, main


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
    """A rebuild gives the shipped artifact. Equal to float16 rounding, not byte for byte: the
    last bit of a sum may differ between CPUs (SIMD width), and flip one rounded value."""
    build(DEFAULT_DATA_DIR, tmp_path)
    with np.load(tmp_path / CENTROIDS_FILE) as rebuilt, np.load(DEFAULT_DATA_DIR / CENTROIDS_FILE) as shipped:
        assert sorted(rebuilt.files) == sorted(shipped.files)
        for name in shipped.files:
            if shipped[name].dtype.kind == "f":
                assert np.allclose(rebuilt[name], shipped[name], rtol=2e-3, atol=1e-4), name
            else:
                assert np.array_equal(rebuilt[name], shipped[name]), name
    rebuilt_meta = json.loads((tmp_path / METADATA_FILE).read_text())
    shipped_meta = json.loads((DEFAULT_DATA_DIR / METADATA_FILE).read_text())
    for meta in (rebuilt_meta, shipped_meta):
        del meta["files"][CENTROIDS_FILE]
    calibration = rebuilt_meta.pop("calibration"), shipped_meta.pop("calibration")
    assert rebuilt_meta == shipped_meta
    assert calibration[0] == pytest.approx(calibration[1], rel=1e-4)


def descriptor_dir(tmp_path: Path, descriptor: dict[str, object], recorded_kind: str | None = None) -> Path:
    """An artifact directory whose encoder/ holds only the given encoder.json, with valid hashes."""
    target = tmp_path / "artifacts"
    (target / "encoder").mkdir(parents=True)
    (target / "encoder" / "encoder.json").write_text(json.dumps(descriptor), encoding="utf-8")
    for name in (PROTOTYPES_FILE, CENTROIDS_FILE):
        shutil.copyfile(DEFAULT_DATA_DIR / name, target / name)
    files = {
        name: sha256_file(target / name) for name in ("encoder/encoder.json", PROTOTYPES_FILE, CENTROIDS_FILE)
    }
    encoder = {"kind": recorded_kind if recorded_kind is not None else descriptor.get("kind")}
    meta = {"format_version": FORMAT_VERSION, "encoder": encoder, "files": files}
    (target / METADATA_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return target


TRANSFORMER_DESCRIPTOR = {"kind": "sentence-transformers", "id": "all-minilm-l6-v2-384", "dimension": 384}


def test_shipped_encoder_is_static_without_a_kind_field(classifier: CentroidClassifier) -> None:
    descriptor = json.loads((DEFAULT_DATA_DIR / "encoder" / "encoder.json").read_text(encoding="utf-8"))
    assert "kind" not in descriptor  # so the shipped bytes and hashes predate the field unchanged
    assert encoder_kind(DEFAULT_DATA_DIR / "encoder") == "static"
    assert isinstance(classifier.encoder, StaticEncoder)


def test_transformer_directory_without_the_extra_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import raises ImportError
    directory = descriptor_dir(tmp_path, TRANSFORMER_DESCRIPTOR)
    verify(directory)  # only encoder.json is required in a sentence-transformers encoder directory
    with pytest.raises(ClassifierUnavailable, match=r"pip install 'routeiq\[transformers\]'"):
        CentroidClassifier.load(directory)


def test_unknown_encoder_kind_is_rejected(tmp_path: Path) -> None:
    directory = descriptor_dir(tmp_path, {"kind": "word2vec", "id": "x", "dimension": 3})
    with pytest.raises(ClassifierUnavailable, match="unknown encoder kind 'word2vec'"):
        CentroidClassifier.load(directory)


def test_encoder_kind_must_match_metadata(tmp_path: Path) -> None:
    directory = descriptor_dir(tmp_path, TRANSFORMER_DESCRIPTOR, recorded_kind="static")
    with pytest.raises(ClassifierUnavailable, match="encoder kind"):
        CentroidClassifier.load(directory)


def test_static_directory_still_needs_its_table_hashed(data_copy: Path) -> None:
    meta = json.loads((data_copy / METADATA_FILE).read_text(encoding="utf-8"))
    del meta["files"]["encoder/weights.npy"]
    (data_copy / METADATA_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ClassifierUnavailable, match=r"lists no hash for: encoder/weights\.npy"):
        CentroidClassifier.load(data_copy)


def test_transformer_build_refuses_the_shipped_directory() -> None:
    with pytest.raises(ValueError, match="--out"):
        build(DEFAULT_DATA_DIR, DEFAULT_DATA_DIR, "sentence-transformers")
    with pytest.raises(SystemExit):
        main(["--encoder", "sentence-transformers"])
