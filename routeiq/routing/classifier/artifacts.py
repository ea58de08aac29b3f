"""Where the shipped classifier files live, and proof that they are the ones the build wrote.

metadata.json lists a sha256 for every artifact (encoder files, prototypes, centroids). Loading
checks all of them, and checks that none of the files the runtime needs is absent from the list,
so a truncated download, a hand-edited centroid or a swapped encoder fails loudly at startup.
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
REQUIRED_FILES = (*(f"{ENCODER_DIR}/{name}" for name in ENCODER_FILES), PROTOTYPES_FILE, CENTROIDS_FILE)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (the encoder table is megabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    """Check every listed file against its sha256; returns the metadata when all match."""
    meta = read_metadata(directory)
    files: dict[str, str] = meta["files"]
    unlisted = [name for name in REQUIRED_FILES if name not in files]
    if unlisted:
        raise ClassifierUnavailable(f"metadata.json lists no hash for: {', '.join(unlisted)}")
    for name, expected in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            raise ClassifierUnavailable(f"classifier artifact missing: {path}")
        actual = sha256_file(path)
        if actual != expected:
            raise ClassifierUnavailable(f"sha256 mismatch for {path}: expected {expected}, got {actual}")
    return meta
