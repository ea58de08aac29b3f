"""A small, deterministic Adam trainer shared by the gradient-trained routers (svm, mlp, mf).

Numpy only: the problems are a few thousand rows by a few hundred features, where a full framework
would cost more to import than to train. Mini-batches come from a seeded generator; a slice of the
training rows (chosen by the same generator) is held back to pick the best epoch, so a router does not
keep fitting noise for a fixed number of epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# loss_and_grads(params, rows) -> (loss, grads), with grads keyed like params.
LossFn = Callable[[dict[str, np.ndarray], np.ndarray], tuple[float, dict[str, np.ndarray]]]


@dataclass(frozen=True, slots=True)
class AdamSettings:
    learning_rate: float = 3e-3
    epochs: int = 40
    batch_size: int = 256
    validation_fraction: float = 0.1
    patience: int = 6
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8


def train_adam(
    params: dict[str, np.ndarray],
    loss_and_grads: LossFn,
    n_rows: int,
    rng: np.random.Generator,
    settings: AdamSettings,
) -> dict[str, np.ndarray]:
    """Minimise the loss over rows ``0..n_rows-1``; returns the parameters of the best validation epoch."""
    order = rng.permutation(n_rows)
    n_valid = int(n_rows * settings.validation_fraction) if n_rows >= 50 else 0
    valid, train = order[:n_valid], order[n_valid:]
    first = {name: np.zeros_like(value) for name, value in params.items()}
    second = {name: np.zeros_like(value) for name, value in params.items()}
    best = {name: value.copy() for name, value in params.items()}
    best_loss = np.inf
    stale = 0
    step = 0
    for _epoch in range(settings.epochs):
        shuffled = train[rng.permutation(train.size)]
        for start in range(0, shuffled.size, settings.batch_size):
            step += 1
            _, grads = loss_and_grads(params, shuffled[start : start + settings.batch_size])
            for name, grad in grads.items():
                first[name] = settings.beta1 * first[name] + (1 - settings.beta1) * grad
                second[name] = settings.beta2 * second[name] + (1 - settings.beta2) * grad * grad
                corrected1 = first[name] / (1 - settings.beta1**step)
                corrected2 = second[name] / (1 - settings.beta2**step)
                params[name] = params[name] - settings.learning_rate * corrected1 / (
                    np.sqrt(corrected2) + settings.epsilon
                )
        monitor = valid if n_valid else train
        loss, _ = loss_and_grads(params, monitor)
        if loss < best_loss - 1e-6:
            best_loss, stale = loss, 0
            best = {name: value.copy() for name, value in params.items()}
        else:
            stale += 1
            if stale >= settings.patience:
                break
    return best


ADAM_PARAMETERS = ("learning_rate", "epochs", "batch_size")  # what settings_from reads from params


def settings_from(params: dict[str, object], defaults: AdamSettings) -> AdamSettings:
    """Adam settings with any of ``learning_rate``, ``epochs``, ``batch_size`` overridden by params."""
    return AdamSettings(
        learning_rate=float(params.get("learning_rate", defaults.learning_rate)),  # type: ignore[arg-type]
        epochs=int(params.get("epochs", defaults.epochs)),  # type: ignore[call-overload]
        batch_size=int(params.get("batch_size", defaults.batch_size)),  # type: ignore[call-overload]
        validation_fraction=defaults.validation_fraction,
        patience=defaults.patience,
    )
