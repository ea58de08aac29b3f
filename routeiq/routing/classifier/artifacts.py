"""Where the shipped classifier files live, and proof that they are the ones the build wrote.

metadata.json lists a sha256 for every artifact (encoder files, prototypes, centroids). Loading
checks all of them, and checks that none of the files the runtime needs is absent from the list,
so a truncated download, a hand-edited centroid or a swapped encoder fails loudly at startup.

Which encoder a directory needs is said by ``encoder/encoder.json``'s ``"kind"``: ``"static"`` (the
shipped torch-free table; also what a missing ``"kind"`` means, so the shipped files, and their
hashes, predate the field unchanged) or ``"sentence-transformers"`` (the optional
``routeiq[transformers]`` extra, whose encoder directory holds only the descriptor).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from routeiq.routing.classifier.encoder import ENCODER_FILES
from routeiq.routing.classifier.errors import ClassifierUnavailable

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "data" / "classifier"
ENCODER_DIR = "encoder"
PROTOTYPES_FILE = "prototypes.yaml"
CENTROIDS_FILE = "centroids.npz"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1
# Every file the runtime reads, relative to the data directory: each must be hashed in metadata.
ENCODER_DESCRIPTOR = "encoder.json"
STATIC_ENCODER = "static"
TRANSFORMER_ENCODER = "sentence-transformers"
# The files each encoder kind reads from the encoder directory.
ENCODER_KIND_FILES: dict[str, tuple[str, ...]] = {
    STATIC_ENCODER: ENCODER_FILES,
    TRANSFORMER_ENCODER: (ENCODER_DESCRIPTOR,),
}
ENCODER_KINDS = tuple(ENCODER_KIND_FILES)


def required_files(kind: str = STATIC_ENCODER) -> tuple[str, ...]:
    """Every file the runtime reads for an encoder kind, relative to the data directory."""
    encoder_files = (f"{ENCODER_DIR}/{name}" for name in ENCODER_KIND_FILES[kind])
    return (*encoder_files, PROTOTYPES_FILE, CENTROIDS_FILE)


# Every file the runtime reads for the shipped (static) encoder: each must be hashed in metadata.
REQUIRED_FILES = required_files(STATIC_ENCODER)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (the encoder table is megabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def encoder_kind(encoder_dir: Path) -> str:
    """The ``"kind"`` in ``encoder_dir/encoder.json`` (``"static"`` when absent)."""
    path = encoder_dir / ENCODER_DESCRIPTOR
    try:
        descriptor = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClassifierUnavailable(f"cannot read {path}: {exc}") from exc
    kind = descriptor.get("kind", STATIC_ENCODER) if isinstance(descriptor, dict) else None
    if kind not in ENCODER_KIND_FILES:
        raise ClassifierUnavailable(
            f"{path} names unknown encoder kind {kind!r} (known: {', '.join(ENCODER_KINDS)})"
        )
    return str(kind)


def read_metadata(directory: Path) -> dict[str, Any]:
    """metadata.json as a dict; raises ClassifierUnavailable if missing or not JSON."""
    path = directory / METADATA_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClassifierUnavailable(f"cannot read {path}: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
        raise ClassifierUnavailable(f"{path} has no 'files' table of sha256 hashes")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ClassifierUnavailable(f"{path} has format_version {meta.get('format_version')!r}")
    return meta


def verify(directory: Path) -> dict[str, Any]:
    """Check every listed file against its sha256; returns the metadata when all match.

    The encoder descriptor is checked like every other file before its ``"kind"`` is trusted to say
    which further files must be listed.
    """
    meta = read_metadata(directory)
    files: dict[str, str] = meta["files"]
    descriptor = f"{ENCODER_DIR}/{ENCODER_DESCRIPTOR}"
    if descriptor not in files:
        raise ClassifierUnavailable(f"metadata.json lists no hash for: {descriptor}")
    for name, expected in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            raise ClassifierUnavailable(f"classifier artifact missing: {path}")
        actual = sha256_file(path)
        if actual != expected:
            raise ClassifierUnavailable(f"sha256 mismatch for {path}: expected {expected}, got {actual}")
    kind = encoder_kind(directory / ENCODER_DIR)
    unlisted = [name for name in required_files(kind) if name not in files]
    if unlisted:
        raise ClassifierUnavailable(f"metadata.json lists no hash for: {', '.join(unlisted)}")
    encoder_meta = meta.get("encoder")
    recorded = encoder_meta.get("kind", STATIC_ENCODER) if isinstance(encoder_meta, dict) else STATIC_ENCODER
    if recorded != kind:
        raise ClassifierUnavailable(
            f"metadata.json records encoder kind {recorded!r}, encoder.json says {kind!r}"
        )
    return meta
