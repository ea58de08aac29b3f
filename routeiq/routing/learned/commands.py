"""The bodies of ``routeiq train`` and ``routeiq classify`` (``cli.py`` only parses and imports lazily).

Kept out of ``cli.py`` so ``routeiq --help`` never imports numpy, the tokenizer or any router code.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from routeiq.routing.catalogue import ANSWER_VERIFIER, CENTROID_STRATEGY
from routeiq.routing.learned.artifacts import ArtifactError, hmac_key_from_env, load_router, save_router
from routeiq.routing.learned.dataset import DatasetError, load_dataset, split_by_hash
from routeiq.routing.learned.encoder import EncoderUnavailable, embed_in_batches, encoder_by_name
from routeiq.routing.learned.router import COMPLEX, SIMPLE, LearnedRouter
from routeiq.routing.learned.train import CrossValidation, cross_validate, evaluate_router, train_router
from routeiq.routing.signals import content_text


def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` hyper-parameters; values parsed as JSON numbers/booleans when they are."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def run_train(args: argparse.Namespace) -> int:
    """Train on the hash split's train side, evaluate on its test side, cross-validate, write the artifact.

    Parameters the data cannot support are adapted with a warning on stderr; the last lines report
    the held-out metrics (when the test side has a gap to recover) and the k-fold AUROC on the train
    side, which exists even when the test side is too small to say anything.
    """
    if args.algo == ANSWER_VERIFIER:
        from routeiq.routing.learned.verifier_command import run_train_verifier

        return run_train_verifier(args)
    try:
        hmac_key = hmac_key_from_env(args.hmac_key_env) if args.hmac_key_env else None
        params = parse_params(args.param or [])
        dataset = load_dataset(args.data)
        train, test = split_by_hash(dataset, args.test_fraction)
        encoder = encoder_by_name(args.encoder)
        print(
            f"data: {len(dataset)} prompts, {len(dataset.models)} models; "
            f"train {len(train)}, test {len(test)}; "
            f"encoder {encoder.id} ({encoder.dimension}d)",
            file=sys.stderr,
        )
        vectors = embed_in_batches(encoder, list(train.prompts))
        router = train_router(
            train,
            args.algo,
            encoder,
            seed=args.seed,
            weak=args.weak,
            strong=args.strong,
            params=params,
            strong_fraction=args.strong_fraction,
            embeddings=vectors,
        )
        for warning in router.info.training.get("warnings", []):
            print(f"routeiq train: warning: {warning}", file=sys.stderr)
        metrics: dict[str, Any] = {}
        if len(test) and _has_gap(test, router):
            metrics = evaluate_router(router, test, seed=args.seed).as_dict()
        else:
            print("held-out split has no weak-to-strong gap: no routing metrics", file=sys.stderr)
        cv = _cross_validate(args, train, router, params, vectors)
        training = {
            **router.info.training,
            "test_prompts": len(test),
            "heldout": metrics,
            "cv": cv.as_dict() if cv else None,
        }
        router = LearnedRouter(
            dataclasses.replace(router.info, training=training),
            router.scorer,
            router.features,
            router.encoder,
        )
        path = save_router(router, args.out, hmac_key=hmac_key)
    except (DatasetError, ArtifactError, EncoderUnavailable, ValueError) as error:
        print(f"routeiq train: {error}", file=sys.stderr)
        return 2
    print(f"trained {args.algo}: weak={router.info.weak} strong={router.info.strong} -> {path}")
    if metrics:
        print(f"{'held-out':<14} {'APGR':>7} {'CPT(50%)':>9} {'CPT(80%)':>9} {'AUROC':>7}")
        for name in ("router", "prompt_length", "random"):
            row = metrics[name]
            label = args.algo if name == "router" else name
            cpts = f"{row['cpt50']:8.1f}% {row['cpt80']:8.1f}%"
            print(f"{label:<14} {row['apgr']:7.4f} {cpts} {row['auroc']:7.4f}")
        gain = metrics["gain_over_length"]
        print(
            f"{args.algo} vs prompt_length: APGR {gain['apgr']:+.4f} ± {gain['standard_error']:.4f} "
            "(paired bootstrap standard error; within about two of them the gain may be noise)"
        )
    if cv is not None:
        print(_cv_line(cv))
    print(
        json.dumps(
            {
                "artifact": str(path),
                "algo": args.algo,
                "params": router.info.params,
                "heldout": metrics,
                "cv": cv.as_dict() if cv else None,
                "warnings": router.info.training.get("warnings", []),
            }
        )
    )
    return 0


def as_trained(params: dict[str, Any]) -> dict[str, Any]:
    """The trained router's parameters to re-fit each fold with: after any adaptation (knn's clamped
    ``k``), but without what training itself chose by cross-validation (linear's ``l2``, listed in
    ``params["cv"]``): each fold searches again on its own rows, so the held-out fold never picks it.
    An ensemble's member records (nested dicts) are dropped too: each fold fits its members afresh.
    """
    searched = {key for row in params.get("cv", ()) for key in row if not key.startswith("cv_")}
    return {
        key: value
        for key, value in params.items()
        if key != "cv" and key not in searched and not isinstance(value, dict)
    }


def _cross_validate(
    args: argparse.Namespace,
    train: Any,
    router: LearnedRouter,
    params: dict[str, Any],
    vectors: np.ndarray,
) -> CrossValidation | None:
    """k-fold AUROC of the trained configuration on the train side, or None (said on stderr)."""
    if args.cv_folds == 0:
        return None
    try:
        return cross_validate(
            train,
            args.algo,
            router.encoder,
            folds=args.cv_folds,
            seed=args.seed,
            weak=router.info.weak,
            strong=router.info.strong,
            params={**params, **as_trained(router.info.params)},
            embeddings=vectors,
        )
    except DatasetError as error:
        print(f"routeiq train: warning: no cross-validation: {error}", file=sys.stderr)
        return None


def _cv_line(cv: CrossValidation) -> str:
    label = f"cross-validated AUROC ({cv.folds}-fold, {cv.rows} training prompts)"
    if cv.auroc is None:
        return f"{label}: undefined (no strong wins)"
    folds = [value for value in cv.fold_auroc if value is not None]
    spread = f", folds {min(folds):.4f}..{max(folds):.4f}" if folds else ""
    apgr = f", APGR {cv.apgr:.4f}" if cv.apgr is not None else ""
    return f"{label}: {cv.auroc:.4f}{spread}{apgr}"


def _has_gap(test: Any, router: LearnedRouter) -> bool:
    assert router.info.weak is not None and router.info.strong is not None
    return bool(test.column(router.info.strong).sum() > test.column(router.info.weak).sum())


def prompt_text(record: Any) -> str:
    """The text to classify: ``prompt``, else the last user message of ``messages``."""
    if not isinstance(record, Mapping):
        raise ValueError("expected a JSON object")
    prompt = record.get("prompt")
    if isinstance(prompt, str):
        return prompt
    messages = record.get("messages")
    if isinstance(messages, list):
        users = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
        if users:
            return content_text(users[-1].get("content"))
        raise ValueError("'messages' has no user message")
    raise ValueError("expected a 'prompt' string or a 'messages' list")


def _records(lines: Iterable[str]) -> Iterator[tuple[str | None, str | None]]:
    """(text, error) per non-blank input line, in order."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield prompt_text(json.loads(line)), None
        except (json.JSONDecodeError, ValueError) as error:
            yield None, f"line {number}: {error}"


def _chunks(
    items: Iterator[tuple[str | None, str | None]], size: int
) -> Iterator[list[tuple[str | None, str | None]]]:
    chunk: list[tuple[str | None, str | None]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _centroid() -> Any:
    from routeiq.routing.classifier import CentroidClassifier

    return CentroidClassifier.load()


def run_classify(args: argparse.Namespace) -> int:
    """JSON lines in, one JSON line out per input (same order): p_strong, tier, category, confidence."""
    strategy = args.strategy
    try:
        learned: LearnedRouter | None = None
        if strategy != CENTROID_STRATEGY:
            if args.model_path is None:
                raise ArtifactError(f"--strategy {strategy} needs --model-path (a trained artifact)")
            hmac_key = hmac_key_from_env(args.hmac_key_env) if args.hmac_key_env else None
            learned = load_router(args.model_path, hmac_key=hmac_key)
            if learned.strategy != strategy:
                raise ArtifactError(f"{args.model_path} holds an {learned.strategy} router, not {strategy}")
            if not learned.info.has_pair:
                raise ArtifactError(
                    f"{args.model_path}: the router has no (weak, strong) pair, so no p_strong"
                )
        try:
            classifier = _centroid()
        except Exception as error:  # ClassifierUnavailable: fatal for the centroid, loud for learned
            if learned is None:
                raise EncoderUnavailable(f"the centroid classifier is unavailable: {error}") from error
            print(
                f"routeiq classify: no categories (centroid classifier unavailable: {error})", file=sys.stderr
            )
            classifier = None
    except (ArtifactError, EncoderUnavailable) as error:
        print(f"routeiq classify: {error}", file=sys.stderr)
        return 2
    failures = 0
    with _open_input(args.input) as source:
        for chunk in _chunks(_records(source), args.batch_size):
            for line in _classify_chunk(chunk, strategy, classifier, learned, args.threshold):
                failures += "error" in line
                sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    return 1 if failures else 0


@contextlib.contextmanager
def _open_input(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdin
        return
    with Path(path).open(encoding="utf-8") as handle:
        yield handle


def _classify_chunk(
    chunk: list[tuple[str | None, str | None]],
    strategy: str,
    classifier: Any,
    learned: LearnedRouter | None,
    threshold: float | None,
) -> list[dict[str, Any]]:
    """Classify the chunk's valid texts in one batch; error lines keep their place in the output."""
    texts = [text for text, _ in chunk if text is not None]
    results: list[dict[str, Any]] = []
    if texts:
        shared: np.ndarray | None = None
        categories: list[Any] = [None] * len(texts)
        if classifier is not None:
            shared = classifier.encoder.embed(texts)
            categories = classifier.classify_embeddings(shared, texts)
        if learned is None:
            for item in categories:
                tier = item.tier if threshold is None else (COMPLEX if item.p_strong >= threshold else SIMPLE)
                results.append(_line(item.p_strong, tier, item.category, item.confidence, strategy))
        else:
            same_encoder = shared is not None and learned.encoder.id == classifier.encoder.id
            vectors = (
                shared if same_encoder and shared is not None else embed_in_batches(learned.encoder, texts)
            )
            prediction = learned.predict_embeddings(texts, vectors)
            assert prediction.p_strong is not None
            for verdict, item in zip(learned.decide(prediction.p_strong, threshold), categories, strict=True):
                category = item.category if item is not None else None
                results.append(_line(verdict.p_strong, verdict.tier, category, verdict.confidence, strategy))
    answers = iter(results)
    return [
        next(answers) if text is not None else {"error": error, "strategy": strategy} for text, error in chunk
    ]


def _line(
    p_strong: float, tier: str, category: str | None, confidence: float, strategy: str
) -> dict[str, Any]:
    return {
        "p_strong": round(float(p_strong), 6),
        "tier": tier,
        "category": category,
        "confidence": round(float(confidence), 6),
        "strategy": strategy,
    }
