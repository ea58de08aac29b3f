"""Learned routers: trained from prompts with per-model outcomes, served from verified artifacts.

What the gateway uses:

- ``load_router(directory, *, hmac_key=None, encoder=None) -> LearnedRouter`` (raises ``ArtifactError``)
- ``RouterSlot``: ``slot.current`` to serve, ``slot.swap_from(directory)`` to hot-reload
- ``LearnedRouter.predict(texts) -> Prediction`` (``scores`` per model, ``p_strong``),
  ``.p_strong(texts)``, ``.classify(texts) -> [TierVerdict(p_strong, tier, confidence)]``,
  ``.info`` (models, weak/strong, threshold, encoder), ``.strategy`` (``llmrouter-<algo>``)

Training: ``load_dataset``, ``split_by_hash``, ``train_router``, ``evaluate_router``, ``cross_validate``,
``save_router``.
Only numpy is needed; ``cryptography`` (optional) adds Ed25519 signatures.
"""

from __future__ import annotations

from routeiq.routing.learned.algorithms import ALGORITHM_NAMES
from routeiq.routing.learned.artifacts import ArtifactError, hmac_key_from_env, load_router, save_router
from routeiq.routing.learned.dataset import DatasetError, RoutingDataset, load_dataset, split_by_hash
from routeiq.routing.learned.encoder import Encoder, EncoderUnavailable, HashingEncoder, default_encoder
from routeiq.routing.learned.router import LearnedRouter, Prediction, RouterInfo, TierVerdict
from routeiq.routing.learned.slot import RouterSlot
from routeiq.routing.learned.train import cross_validate, evaluate_router, train_router

__all__ = [
    "ALGORITHM_NAMES",
    "ArtifactError",
    "DatasetError",
    "Encoder",
    "EncoderUnavailable",
    "HashingEncoder",
    "LearnedRouter",
    "Prediction",
    "RouterInfo",
    "RouterSlot",
    "RoutingDataset",
    "TierVerdict",
    "cross_validate",
    "default_encoder",
    "evaluate_router",
    "hmac_key_from_env",
    "load_dataset",
    "load_router",
    "save_router",
    "split_by_hash",
    "train_router",
]
