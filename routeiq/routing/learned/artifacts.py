"""Saving and loading learned routers in safe formats, verified before anything is trusted.

An artifact is a directory:

- ``weights.npz``: every array (algorithm weights, feature scaling), read with ``allow_pickle=False``
  and refused unless every array is plain numeric: no pickle anywhere, so loading cannot run code.
- ``manifest.json``: algorithm, ordered model labels, the weak/strong pair, encoder id and dimension,
  hyper-parameters, threshold and calibration, a training-data summary, the creating RouteIQ version,
  and the sha256 of every other file.
- optional ``manifest.hmac`` (HMAC-SHA256 of the manifest bytes, hex) and ``manifest.ed25519``
  (an Ed25519 signature of the manifest bytes, hex; needs the optional ``cryptography`` package).
  Signing the manifest covers the weights through their sha256.

``load_router`` checks, in order: manifest shape, signatures (when a key is given), file hashes, array
dtypes, the algorithm's own shape checks, the encoder id and dimension, and a one-row prediction of
the right width. Any failure is an ``ArtifactError`` saying what is wrong. ``save_router`` writes a
temporary sibling directory and renames it into place, so a reader never sees half an artifact.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from routeiq import __version__
from routeiq.routing.classifier.artifacts import sha256_file
from routeiq.routing.learned.algorithms import ALGORITHM_NAMES, algorithm
from routeiq.routing.learned.encoder import Encoder, EncoderUnavailable, encoder_by_name
from routeiq.routing.learned.features import FeatureSpec
from routeiq.routing.learned.router import LearnedRouter, RouterInfo

FORMAT = "routeiq-learned-router"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
HMAC_FILE = "manifest.hmac"
ED25519_FILE = "manifest.ed25519"
SCORER_PREFIX = "scorer."
FEATURE_PREFIX = "features."
NUMERIC_KINDS = frozenset("biuf")


class ArtifactError(ValueError):
    """A router artifact is missing, malformed, tampered with, unsigned when it must be, or mismatched."""


def _key_bytes(key: bytes | str) -> bytes:
    data = key.encode("utf-8") if isinstance(key, str) else key
    if not data:
        raise ArtifactError("the HMAC key is empty")
    return data


def hmac_hex(manifest: bytes, key: bytes | str) -> str:
    return hmac.new(_key_bytes(key), manifest, hashlib.sha256).hexdigest()


def hmac_key_from_env(name: str) -> bytes:
    """The HMAC key held in environment variable ``name`` (refuses a missing or empty one)."""
    value = os.environ.get(name, "")
    if not value:
        raise ArtifactError(f"environment variable {name} is not set or empty: no HMAC key")
    return value.encode("utf-8")


def _manifest(router: LearnedRouter, files: dict[str, str]) -> dict[str, Any]:
    info = router.info
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "algo": info.algo,
        "models": list(info.models),
        "weak": info.weak,
        "strong": info.strong,
        "encoder": {"id": info.encoder_id, "dimension": info.encoder_dimension},
        "features": {
            "weight": info.feature_weight,
            "extra": router.features.extra,
            "lexical_weight": info.lexical_weight,
        },
        "score_range": list(info.score_range),
        "threshold": info.threshold,
        "strong_fraction": info.strong_fraction,
        "calibration": [round(value, 6) for value in info.calibration],
        "params": info.params,
        "seed": info.seed,
        "training": info.training,
        "created_by": f"routeiq {__version__}",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files,
    }


def save_router(
    router: LearnedRouter,
    directory: Path | str,
    *,
    hmac_key: bytes | str | None = None,
    ed25519_private_key: bytes | None = None,
) -> Path:
    """Write ``router`` to ``directory`` atomically (replacing an existing artifact there).

    ``ed25519_private_key`` is the 32-byte raw private key; it needs the ``cryptography`` package.
    """
    target = Path(directory).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        arrays = {f"{SCORER_PREFIX}{name}": value for name, value in router.scorer.arrays().items()}
        arrays |= {f"{FEATURE_PREFIX}{name}": value for name, value in router.features.arrays().items()}
        with (staging / WEIGHTS).open("wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        manifest = json.dumps(
            _manifest(router, {WEIGHTS: sha256_file(staging / WEIGHTS)}), indent=2, sort_keys=True
        ).encode("utf-8")
        (staging / MANIFEST).write_bytes(manifest)
        if hmac_key is not None:
            (staging / HMAC_FILE).write_text(hmac_hex(manifest, hmac_key) + "\n")
        if ed25519_private_key is not None:
            (staging / ED25519_FILE).write_text(_ed25519_sign(manifest, ed25519_private_key) + "\n")
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def replace_directory(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an old artifact is moved aside first and removed after.

    Between the two renames ``target`` briefly does not exist: a concurrent loader then fails with an
    ``ArtifactError`` (and a ``RouterSlot`` keeps its current router) rather than reading a mix.
    """
    if not target.exists():
        os.replace(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, retired / target.name)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def _ed25519_sign(manifest: bytes, private_key: bytes) -> str:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError as error:
        raise ArtifactError("Ed25519 signing needs the optional 'cryptography' package") from error
    return Ed25519PrivateKey.from_private_bytes(private_key).sign(manifest).hex()


def _ed25519_verify(manifest: bytes, signature_hex: str, public_key: bytes) -> None:
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as error:
        raise ArtifactError("Ed25519 verification needs the optional 'cryptography' package") from error
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(bytes.fromhex(signature_hex), manifest)
    except (InvalidSignature, ValueError):
        raise ArtifactError("the Ed25519 signature of the manifest does not verify") from None


def _read_manifest(directory: Path) -> tuple[bytes, dict[str, Any]]:
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory}: no {MANIFEST} (not a router artifact)")
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: format version {manifest.get('format_version')} (this build reads 1)")
    return raw, manifest


def verify_signatures(
    directory: Path, raw: bytes, hmac_key: bytes | str | None, ed25519_public_key: bytes | None
) -> None:
    if hmac_key is not None:
        path = directory / HMAC_FILE
        if not path.is_file():
            raise ArtifactError(f"{directory}: an HMAC key was given but the artifact has no {HMAC_FILE}")
        if not hmac.compare_digest(path.read_text().strip(), hmac_hex(raw, hmac_key)):
            raise ArtifactError(f"{directory}: HMAC mismatch (wrong key, or the manifest was changed)")
    if ed25519_public_key is not None:
        path = directory / ED25519_FILE
        if not path.is_file():
            raise ArtifactError(
                f"{directory}: an Ed25519 key was given but the artifact has no {ED25519_FILE}"
            )
        _ed25519_verify(raw, path.read_text().strip(), ed25519_public_key)


def verify_files(directory: Path, manifest: dict[str, Any]) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict) or WEIGHTS not in files:
        raise ArtifactError(f"{directory}: the manifest lists no {WEIGHTS} hash")
    for name, expected in files.items():
        path = directory / name
        if Path(name).name != name or not path.is_file():
            raise ArtifactError(f"{directory}: listed file {name!r} is missing")
        if sha256_file(path) != expected:
            raise ArtifactError(f"{path}: sha256 mismatch (the file was modified or corrupted)")


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError) as error:
        raise ArtifactError(f"{path}: unreadable without pickle ({error})") from None
    for name, value in arrays.items():
        if value.dtype.kind not in NUMERIC_KINDS:
            raise ArtifactError(f"{path}: array {name!r} has non-numeric dtype {value.dtype}")
    return arrays


def _info(manifest: dict[str, Any]) -> RouterInfo:
    try:
        encoder = manifest["encoder"]
        return RouterInfo(
            algo=str(manifest["algo"]),
            models=tuple(str(model) for model in manifest["models"]),
            weak=manifest["weak"],
            strong=manifest["strong"],
            encoder_id=str(encoder["id"]),
            encoder_dimension=int(encoder["dimension"]),
            feature_weight=float(manifest["features"]["weight"]),
            score_range=(float(manifest["score_range"][0]), float(manifest["score_range"][1])),
            threshold=float(manifest["threshold"]),
            strong_fraction=float(manifest["strong_fraction"]),
            calibration=tuple(float(value) for value in manifest["calibration"]),
            params=dict(manifest["params"]),
            seed=int(manifest["seed"]),
            training=dict(manifest.get("training", {})),
            lexical_weight=float(manifest["features"].get("lexical_weight", 0.0)),
        )
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ArtifactError(f"manifest is missing or has a malformed field: {error}") from None


def load_router(
    directory: Path | str,
    *,
    hmac_key: bytes | str | None = None,
    ed25519_public_key: bytes | None = None,
    encoder: Encoder | None = None,
    loaded_encoder: Encoder | None = None,
) -> LearnedRouter:
    """Load and fully verify an artifact (see the module docstring for the checks).

    ``encoder`` defaults to the one the manifest names (the centroid classifier's encoder in
    production); a given encoder must have the recorded id and dimension. ``loaded_encoder``: one
    the process already holds (the gateway's centroid classifier's), used when it is the one the
    manifest names, so its table is not loaded a second time and a prompt can be embedded once.
    """
    path = Path(directory)
    raw, manifest = _read_manifest(path)
    verify_signatures(path, raw, hmac_key, ed25519_public_key)
    verify_files(path, manifest)
    info = _info(manifest)
    if info.algo not in ALGORITHM_NAMES:
        raise ArtifactError(f"{path}: unknown algorithm {info.algo!r}")
    if (info.weak is None) != (info.strong is None) or any(
        name is not None and name not in info.models for name in (info.weak, info.strong)
    ):
        raise ArtifactError(
            f"{path}: weak/strong labels {info.weak!r}/{info.strong!r} are not among the models"
        )
    arrays = read_arrays(path / WEIGHTS)
    scorer_arrays = {
        k.removeprefix(SCORER_PREFIX): v for k, v in arrays.items() if k.startswith(SCORER_PREFIX)
    }
    feature_arrays = {
        k.removeprefix(FEATURE_PREFIX): v for k, v in arrays.items() if k.startswith(FEATURE_PREFIX)
    }
    try:
        scorer = algorithm(info.algo).restore(scorer_arrays, info.params)
        features = FeatureSpec.from_arrays(feature_arrays, info.feature_weight, info.lexical_weight)
    except (KeyError, ValueError, TypeError) as error:
        raise ArtifactError(f"{path}: {info.algo} weights are inconsistent: {error}") from None
    if encoder is None and loaded_encoder is not None and loaded_encoder.id == info.encoder_id:
        encoder = loaded_encoder
    if encoder is None:
        try:
            encoder = encoder_by_name(info.encoder_id)
        except EncoderUnavailable:
            encoder = _default_or_error(info, path)
    if encoder.id != info.encoder_id or encoder.dimension != info.encoder_dimension:
        raise ArtifactError(
            f"{path}: trained with encoder {info.encoder_id} ({info.encoder_dimension}d) but the encoder "
            f"here is {encoder.id} ({encoder.dimension}d)"
        )
    _check_width(path, info, scorer, features)
    return LearnedRouter(info, scorer, features, encoder)


def _default_or_error(info: RouterInfo, path: Path) -> Encoder:
    try:
        return encoder_by_name("centroid")
    except EncoderUnavailable as error:
        raise ArtifactError(f"{path}: its encoder {info.encoder_id} is unavailable here: {error}") from None


def _check_width(path: Path, info: RouterInfo, scorer: Any, features: FeatureSpec) -> None:
    """A one-row prediction: catches weights for another dimension or model count before serving."""
    probe = np.zeros((1, info.encoder_dimension + features.extra), dtype=np.float32)
    try:
        width = scorer.predict(probe).shape[1]
    except ValueError as error:
        raise ArtifactError(
            f"{path}: weights do not fit {info.encoder_dimension}d embeddings "
            f"+ {features.extra} cue and lexical columns: {error}"
        ) from None
    if width != info.outputs:
        raise ArtifactError(f"{path}: weights give {width} outputs, the manifest implies {info.outputs}")
