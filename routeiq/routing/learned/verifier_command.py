"""``routeiq train --algo verifier``: fit the cascade's answer verifier and say how good it is.

The triples are split by sha256 of the prompt like routers' data (``--test-fraction`` held out); the
L2 strength is searched on the training side only; the report is the held-out AUROC (does p_correct
rank right answers above wrong ones) and a k-fold AUROC on the training side, every answer scored by
a verifier that never saw it (its own L2 search included).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np

from routeiq.routing.learned.answers import load_answers
from routeiq.routing.learned.artifacts import ArtifactError, hmac_key_from_env
from routeiq.routing.learned.dataset import DatasetError, split_fraction
from routeiq.routing.learned.verifier import out_of_fold, save_verifier, train_verifier, verifier_auroc

SPLIT_SALT = ""  # the same sha256 split as routers' train/test (dataset.split_by_hash)


def _auroc(p_correct: np.ndarray, correct: np.ndarray) -> float | None:
    return verifier_auroc(p_correct, correct) if correct.any() and not correct.all() else None


def run_train_verifier(args: argparse.Namespace) -> int:
    try:
        hmac_key = hmac_key_from_env(args.hmac_key_env) if args.hmac_key_env else None
        answers = load_answers(args.data, args.weak)
        held = np.array(
            [split_fraction(prompt, SPLIT_SALT) < args.test_fraction for prompt in answers.prompts]
        )
        train, test = answers.subset(np.flatnonzero(~held)), answers.subset(np.flatnonzero(held))
        print(
            f"data: {len(answers)} answers of {answers.model}, {answers.correct.mean():.1%} correct; "
            f"train {len(train)}, test {len(test)}",
            file=sys.stderr,
        )
        verifier = train_verifier(train.prompts, train.answers, train.correct, seed=args.seed)
        heldout = _auroc(verifier.p_correct(test.prompts, test.answers), test.correct) if len(test) else None
        cv = None
        if args.cv_folds:
            oof = out_of_fold(
                train.prompts, train.answers, train.correct, folds=args.cv_folds, seed=args.seed
            )
            cv = _auroc(oof, train.correct)
        report = {"model": answers.model, "heldout_auroc": heldout, "cv_auroc": cv, "cv_folds": args.cv_folds}
        verifier = dataclasses.replace(verifier, training={**verifier.training, **report})
        path = save_verifier(verifier, args.out, hmac_key=hmac_key)
    except (DatasetError, ArtifactError, ValueError) as error:
        print(f"routeiq train: {error}", file=sys.stderr)
        return 2
    print(f"trained verifier for {answers.model} (l2={verifier.l2:g}) -> {path}")
    print(f"held-out AUROC: {'n/a' if heldout is None else f'{heldout:.4f}'}")
    print(f"cross-validated AUROC ({args.cv_folds}-fold): {'n/a' if cv is None else f'{cv:.4f}'}")
    print(json.dumps({"artifact": str(path), "algo": "verifier", "l2": verifier.l2, **report}))
    return 0
