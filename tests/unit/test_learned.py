"""Learned routers: datasets and split, each algorithm on a separable toy, artifacts and hot swap."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from routeiq.routing import quality
from routeiq.routing.classifier.artifacts import sha256_file
from routeiq.routing.learned import (
    ALGORITHM_NAMES,
    ArtifactError,
    DatasetError,
    HashingEncoder,
    LearnedRouter,
    RouterSlot,
    RoutingDataset,
    load_dataset,
    load_router,
    save_router,
    split_by_hash,
    train_router,
)
from routeiq.routing.learned.algorithms import Pair, algorithm
from routeiq.routing.learned.artifacts import WEIGHTS
from routeiq.routing.learned.commands import parse_params, prompt_text
from routeiq.routing.learned.dataset import BENCHMARKS_DIR
from routeiq.routing.learned.train import cross_validate

WEAK, STRONG = "small-model", "big-model"

# --- datasets -------------------------------------------------------------------------------------


def write_csv_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "mmlu_a.csv").write_text(
        f'prompt,{WEAK},{STRONG}\n"What is 1+1?\nA. 2\nAnswer:",True,True\n'
        '"Hard one",False,True\nleaked,True,False\n'
    )
    (folder / "mmlu_b.csv").write_text(f"prompt,{WEAK},{STRONG}\nanother,false,true\n")
    (folder / "contaminated_prompts.jsonl").write_text(json.dumps({"eval_prompt": "leaked"}) + "\n")
    return folder


def test_csv_folder_drops_contaminated_and_reads_booleans(tmp_path: Path) -> None:
    dataset = load_dataset(write_csv_folder(tmp_path / "csv"))
    assert dataset.models == (WEAK, STRONG)
    assert dataset.prompts == ("What is 1+1?\nA. 2\nAnswer:", "Hard one", "another")
    assert dataset.scores.tolist() == [[1, 1], [0, 1], [0, 1]]
    assert dataset.sources == ("mmlu_a", "mmlu_a", "mmlu_b")
    assert load_dataset(tmp_path / "csv", drop_contaminated=False).prompts[2] == "leaked"
    assert load_dataset(tmp_path / "csv" / "mmlu_b.csv").prompts == ("another",)


def test_gzipped_csv_and_jsonl_read_like_plain_ones_and_response_columns_are_not_scores(
    tmp_path: Path,
) -> None:
    plain = write_csv_folder(tmp_path / "plain")
    packed = tmp_path / "packed"
    packed.mkdir()
    for path in plain.iterdir():
        (packed / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    expected = load_dataset(plain)
    dataset = load_dataset(packed)
    assert (dataset.prompts, dataset.models, dataset.sources) == (
        expected.prompts,
        expected.models,
        expected.sources,
    )
    assert dataset.scores.tolist() == expected.scores.tolist()  # "leaked" dropped via the .jsonl.gz
    assert load_dataset(packed / "mmlu_b.csv.gz").prompts == ("another",)
    jsonl = tmp_path / "data.jsonl.gz"
    jsonl.write_bytes(gzip.compress(json.dumps({"prompt": "p", "scores": {"m": 1, "n": 0}}).encode()))
    assert load_dataset(jsonl).scores.tolist() == [[1.0, 0.0]]

    with_answers = tmp_path / "gsm"
    with_answers.mkdir()
    (with_answers / "gsm.csv").write_text(
        f"prompt,{WEAK},{STRONG},{WEAK}_response,{STRONG}_response,notes_response\n"
        'What is 2+2?,False,True,"5, I think","4",x\n'
    )
    with pytest.raises(DatasetError, match="notes_response"):  # no model called "notes": a score column
        load_dataset(with_answers)
    (with_answers / "gsm.csv").write_text(
        f'prompt,{WEAK},{STRONG},{WEAK}_response,{STRONG}_response\nWhat is 2+2?,False,True,"5, I think",4\n'
    )
    answered = load_dataset(with_answers)
    assert answered.models == (WEAK, STRONG) and answered.scores.tolist() == [[0.0, 1.0]]


def test_vendored_benchmark_data_loads_from_the_repository() -> None:
    mmlu = load_dataset(BENCHMARKS_DIR / "routellm-mmlu")
    assert len(mmlu) == 14042 - 5 and len(set(mmlu.sources)) == 57  # contaminated prompts dropped
    assert mmlu.models == ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview")
    gsm8k = load_dataset(BENCHMARKS_DIR / "routellm-gsm8k-a")
    assert gsm8k.models == mmlu.models and 600 < len(gsm8k) <= 665
    for folder in ("routellm-mmlu", "routellm-gsm8k-a"):
        assert "Apache License" in (BENCHMARKS_DIR / folder / "LICENSE").read_text()
        assert "RouteLLM" in (BENCHMARKS_DIR / folder / "README.md").read_text()


def test_csv_folder_rejects_mismatched_models_and_bad_values(tmp_path: Path) -> None:
    folder = write_csv_folder(tmp_path / "csv")
    (folder / "mmlu_c.csv").write_text("prompt,other,models\nx,True,True\n")
    with pytest.raises(DatasetError, match="differ"):
        load_dataset(folder)
    (folder / "mmlu_c.csv").write_text(f"prompt,{WEAK},{STRONG}\nx,maybe,True\n")
    with pytest.raises(DatasetError, match=r"mmlu_c\.csv:2"):
        load_dataset(folder)


def test_jsonl_reads_scores_by_model_name(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    lines = [
        {"prompt": "a", "scores": {"m2": 0.5, "m1": 1}},
        {"prompt": "b", "scores": {"m1": False, "m2": True}},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    dataset = load_dataset(path)
    assert dataset.models == ("m1", "m2")
    assert dataset.scores.tolist() == [[1.0, 0.5], [0.0, 1.0]]
    path.write_text(json.dumps({"prompt": "c", "scores": {"m1": 1}}) + "\n" + json.dumps({"prompt": "d"}))
    with pytest.raises(DatasetError, match=r"data\.jsonl:2"):
        load_dataset(path)


def test_hash_split_is_deterministic_disjoint_and_complete() -> None:
    prompts = (*(f"prompt {i}" for i in range(500)), "prompt 3")  # one duplicate
    dataset = RoutingDataset(prompts, (WEAK, STRONG), np.zeros((len(prompts), 2)))
    train, test = split_by_hash(dataset, 0.2)
    again_train, again_test = split_by_hash(dataset, 0.2)
    assert train.prompts == again_train.prompts and test.prompts == again_test.prompts
    assert not set(train.prompts) & set(test.prompts)
    assert len(train) + len(test) == len(dataset)
    assert 60 < len(test) < 140  # ~20 %


# --- algorithms -----------------------------------------------------------------------------------


def toy_problem(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two clusters; on cluster B only the strong model is right, on cluster A both are."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.5
    centres = np.where(hard[:, None], np.r_[1.0, 0.0, 0.0, 0.0], np.r_[0.0, 1.0, 0.0, 0.0])
    features = centres + rng.normal(0, 0.15, (n, 4))
    scores = np.column_stack([(~hard).astype(float), np.ones(n)])
    return features, scores, hard


@pytest.mark.parametrize("name", ALGORITHM_NAMES)
def test_each_algorithm_learns_a_separable_toy_deterministically(name: str) -> None:
    features, scores, _ = toy_problem(400, seed=1)
    test_features, _, hard = toy_problem(200, seed=2)
    scorer = algorithm(name).fit(features, scores, Pair(weak=0, strong=1), 7, {})
    predicted = scorer.predict(test_features)
    assert predicted.shape == (200, 3)
    p_strong = predicted[:, -1]
    assert p_strong[hard].min() > p_strong[~hard].max(), name
    assert quality.auroc(p_strong, hard) == 1.0
    assert predicted[~hard, 0].mean() > predicted[hard, 0].mean()  # weak model's score follows its record
    again = algorithm(name).fit(features, scores, Pair(weak=0, strong=1), 7, {})
    np.testing.assert_allclose(again.predict(test_features), predicted)


# --- routers and artifacts ------------------------------------------------------------------------


def text_dataset(n: int = 160) -> RoutingDataset:
    easy = [f"hello there friend, how are you doing today number {i}" for i in range(n // 2)]
    hard = [f"prove the integral of the polynomial series converges, lemma {i}" for i in range(n // 2)]
    scores = [[1.0, 1.0]] * len(easy) + [[0.0, 1.0]] * len(hard)
    return RoutingDataset(tuple(easy + hard), (WEAK, STRONG), np.array(scores))


@pytest.fixture(scope="module")
def trained() -> LearnedRouter:
    return train_router(text_dataset(), "mlp", HashingEncoder(64), seed=3)


def test_trained_router_predicts_p_strong_and_tiers(trained: LearnedRouter) -> None:
    assert trained.info.weak == WEAK and trained.info.strong == STRONG  # chosen by mean score
    texts = ["hello there friend, how are you", "prove the integral of the series converges"]
    prediction = trained.predict(texts)
    assert prediction.scores.shape == (2, 2) and prediction.p_strong is not None
    assert prediction.p_strong[1] > prediction.p_strong[0]
    decisions = trained.classify(texts)
    assert [decision.tier for decision in decisions] == ["simple", "complex"]
    assert all(0.0 <= decision.confidence <= 1.0 for decision in decisions)
    assert trained.strategy == "llmrouter-mlp"


def test_artifact_round_trip(tmp_path: Path, trained: LearnedRouter) -> None:
    path = save_router(trained, tmp_path / "router", hmac_key="k1")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["algo"] == "mlp" and manifest["models"] == [WEAK, STRONG]
    assert manifest["weak"] == WEAK and manifest["strong"] == STRONG
    assert manifest["encoder"] == {"id": "hashing-v1-64", "dimension": 64}
    assert manifest["files"][WEIGHTS] == sha256_file(path / WEIGHTS)
    assert manifest["training"]["prompts"] == 160 and manifest["created_by"].startswith("routeiq ")
    loaded = load_router(path, hmac_key="k1")
    texts = ["hello friend", "prove the lemma"]
    np.testing.assert_allclose(loaded.predict(texts).scores, trained.predict(texts).scores)
    assert not list(tmp_path.glob(".router.*")), "no staging directory left behind"
    save_router(trained, path)  # replacing an existing artifact
    assert load_router(path).info.algo == "mlp"


def test_tampered_weights_are_refused(tmp_path: Path, trained: LearnedRouter) -> None:
    path = save_router(trained, tmp_path / "router")
    data = bytearray((path / WEIGHTS).read_bytes())
    data[-40] ^= 0xFF
    (path / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        load_router(path)


def test_wrong_or_missing_hmac_is_refused(tmp_path: Path, trained: LearnedRouter) -> None:
    signed = save_router(trained, tmp_path / "signed", hmac_key="right")
    with pytest.raises(ArtifactError, match="HMAC mismatch"):
        load_router(signed, hmac_key="wrong")
    manifest = json.loads((signed / "manifest.json").read_text())
    manifest["threshold"] = 0.0  # edit the manifest: the signature no longer matches
    (signed / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="HMAC mismatch"):
        load_router(signed, hmac_key="right")
    unsigned = save_router(trained, tmp_path / "unsigned")
    with pytest.raises(ArtifactError, match=r"no manifest\.hmac"):
        load_router(unsigned, hmac_key="right")


def test_wrong_encoder_dimension_is_refused(tmp_path: Path, trained: LearnedRouter) -> None:
    path = save_router(trained, tmp_path / "router")
    with pytest.raises(ArtifactError, match="encoder"):
        load_router(path, encoder=HashingEncoder(128))


def test_pickled_arrays_are_refused(tmp_path: Path, trained: LearnedRouter) -> None:
    path = save_router(trained, tmp_path / "router")
    np.savez(path / WEIGHTS, **{"scorer.w1": np.array([{"evil": 1}], dtype=object)})
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][WEIGHTS] = sha256_file(path / WEIGHTS)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="without pickle"):
        load_router(path)


def test_not_an_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        load_router(tmp_path)


def test_slot_swaps_only_to_a_verified_router(tmp_path: Path, trained: LearnedRouter) -> None:
    good = save_router(trained, tmp_path / "good", hmac_key="k")
    other = train_router(text_dataset(), "knn", HashingEncoder(64), seed=1)
    better = save_router(other, tmp_path / "better", hmac_key="k")
    bad = save_router(other, tmp_path / "bad", hmac_key="not-k")
    slot = RouterSlot(hmac_key="k")
    assert not slot.loaded
    with pytest.raises(ArtifactError):
        _ = slot.current
    first = slot.swap_from(good)
    assert slot.current is first and slot.current.algo == "mlp"
    with pytest.raises(ArtifactError, match="HMAC"):
        slot.swap_from(bad)
    assert slot.current is first, "a bad artifact must not replace the serving router"
    (tmp_path / "bad" / WEIGHTS).unlink()
    with pytest.raises(ArtifactError):
        slot.swap_from(tmp_path / "bad")
    assert slot.current is first
    assert slot.swap_from(better).algo == "knn" and slot.current.algo == "knn"


def test_ed25519_signature(tmp_path: Path, trained: LearnedRouter) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519  # the signing extra; a dev dependency

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    path = save_router(trained, tmp_path / "router", ed25519_private_key=private)
    assert load_router(path, ed25519_public_key=public).info.algo == "mlp"
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(ArtifactError, match="Ed25519"):
        load_router(
            path,
            ed25519_public_key=other.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        )


# --- parameters that fit the data, warnings, cross-validation ------------------------------------


def test_knn_k_beyond_a_quarter_of_the_rows_is_clamped_with_a_warning() -> None:
    data, encoder = text_dataset(40), HashingEncoder(64)
    unclamped = algorithm("knn").fit(
        np.ones((40, 3)) + np.eye(40, 3), data.scores, Pair(weak=0, strong=1), 0, {"k": 64}
    )
    assert np.ptp(unclamped.predict(np.eye(5, 3))[:, -1]) == 0.0, "k >= rows: one score for everything"

    router = train_router(data, "knn", encoder, params={"k": 64})
    assert router.info.params == {"k": 10}
    assert any("k=64" in warning and "k=10" in warning for warning in router.info.training["warnings"])
    p_strong = router.predict(list(data.prompts)).p_strong
    assert p_strong is not None and np.ptp(p_strong) >= 0.5, "easy and hard prompts now score apart"

    small_k = train_router(data, "knn", encoder, params={"k": 5})
    assert small_k.info.params == {"k": 5}
    assert not any("knn" in warning for warning in small_k.info.training["warnings"])


def test_elo_clusters_are_clamped_to_the_rows_with_a_warning() -> None:
    router = train_router(text_dataset(40), "elo", HashingEncoder(64))
    assert router.info.params["clusters"] == 4
    assert any("clusters=24" in warning for warning in router.info.training["warnings"])


@pytest.mark.parametrize("name", ALGORITHM_NAMES)
def test_an_unknown_parameter_is_refused_not_ignored(name: str) -> None:
    with pytest.raises(ValueError, match="no parameter 'kk'"):
        train_router(text_dataset(40), name, HashingEncoder(64), params={"kk": 3})


def test_few_strong_wins_and_a_constant_router_are_flagged() -> None:
    plenty = train_router(text_dataset(160), "knn", HashingEncoder(64), params={"k": 5})
    assert plenty.info.training["warnings"] == []
    few = train_router(text_dataset(40), "knn", HashingEncoder(64), params={"k": 5})
    assert any("only 20 of the 40" in warning for warning in few.info.training["warnings"])
    # The two models always agree: nothing to gain from the strong one, every prompt scores 0.5.
    prompts = text_dataset(40).prompts
    agreeing = RoutingDataset(prompts, (WEAK, STRONG), np.array([[1.0, 1.0], [0.0, 0.0]] * 20))
    router = train_router(agreeing, "knn", HashingEncoder(64), params={"k": 5})
    assert any("the same p_strong (0.5000)" in warning for warning in router.info.training["warnings"])


def test_cross_validation_scores_every_row_with_a_router_that_never_saw_it() -> None:
    data, encoder = text_dataset(160), HashingEncoder(64)
    result = cross_validate(data, "knn", encoder, folds=5, seed=0)
    assert result.folds == 5 and result.rows == 160 and len(result.fold_auroc) == 5
    assert result.auroc is not None and result.auroc > 0.95  # the hard prompts are recognisable
    assert result.apgr is not None and result.apgr > 0.7
    assert cross_validate(data, "knn", encoder, folds=5, seed=0) == result  # deterministic

    # The same prompts with outcomes shuffled across them: nothing to learn, and CV says so.
    shuffled = np.random.default_rng(0).permutation(data.scores)
    noise = cross_validate(RoutingDataset(data.prompts, data.models, shuffled), "knn", encoder, folds=5)
    assert noise.auroc is not None and noise.auroc < 0.7

    with pytest.raises(DatasetError, match="too few"):
        cross_validate(text_dataset(8), "knn", encoder, folds=5)


# --- CLI helpers ----------------------------------------------------------------------------------


def test_prompt_text_reads_prompt_or_last_user_message() -> None:
    assert prompt_text({"prompt": "hi"}) == "hi"
    messages = [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]
    assert prompt_text({"messages": messages}) == "second"
    with pytest.raises(ValueError):
        prompt_text({"messages": [{"role": "system", "content": "x"}]})
    with pytest.raises(ValueError):
        prompt_text(["not", "an", "object"])


def test_parse_params() -> None:
    assert parse_params(["k=8", "l2=0.01", "name=x"]) == {"k": 8, "l2": 0.01, "name": "x"}
    with pytest.raises(ValueError):
        parse_params(["oops"])


def test_a_slot_reuses_an_encoder_already_loaded_only_when_the_artifact_names_it(
    tmp_path: Path, trained: LearnedRouter
) -> None:
    path = save_router(trained, tmp_path / "router", hmac_key="k")
    same, other = HashingEncoder(64), HashingEncoder(32)
    assert RouterSlot(hmac_key="k", loaded_encoder=same).swap_from(path).encoder is same
    router = RouterSlot(hmac_key="k", loaded_encoder=other).swap_from(path)
    assert router.encoder is not other and router.encoder.id == trained.info.encoder_id


def test_a_learned_scorer_embeds_a_prompt_once_for_its_router_and_the_classifier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from routeiq.routing.classifier import CentroidClassifier
    from routeiq.routing.scoring import CentroidScorer, LearnedScorer

    classifier = CentroidClassifier.load()
    encoder = classifier.encoder
    router = train_router(text_dataset(), "knn", encoder, seed=1)
    scorer = LearnedScorer("llmrouter-knn", RouterSlot(router), CentroidScorer(classifier))
    text = "prove the integral of the series converges"
    expected = (classifier.classify(text).category, router.classify([text])[0])
    calls: list[int] = []
    embed = encoder.embed
    monkeypatch.setattr(encoder, "embed", lambda texts: calls.append(len(texts)) or embed(texts))
    assessment = scorer.assess(text)
    assert calls == [1]
    assert (assessment.category, assessment.p_strong) == (expected[0], expected[1].p_strong)
    assert assessment.complex == (expected[1].tier == "complex")
