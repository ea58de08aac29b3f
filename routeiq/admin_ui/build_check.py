"""Digests that tie the committed UI build and generated types to their sources.

The UI's build output (``static/``) and its TypeScript types (``ui/src/api/schema.d.ts``) are
committed, so installs need no node. Each records the digest of what it was made from; tests
recompute the digests (no node needed) and fail when a source changed without a rebuild.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

# The files a build is made from, relative to ui/ (node_modules and the exported schema are not).
UI_SOURCE_FILES = ("index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts")
UI_SOURCE_DIRS = ("src",)
STAMP_FILE = Path(__file__).parent / "build.sha256"  # the digest of the sources static/ was built from
SCHEMA_HEADER = "// openapi-sha256: "  # the first line of the generated schema.d.ts


def ui_source_digest(ui_dir: Path) -> str:
    """sha256 over every source file's path and bytes, in path order."""
    paths = [ui_dir / name for name in UI_SOURCE_FILES]
    for folder in UI_SOURCE_DIRS:
        paths += [path for path in (ui_dir / folder).rglob("*") if path.is_file()]
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda path: path.relative_to(ui_dir).as_posix()):
        digest.update(path.relative_to(ui_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


def openapi_schema() -> dict[str, Any]:
    """The app's OpenAPI schema, from an app that is built but never started (no LiteLLM import)."""
    from routeiq.app import create_app
    from routeiq.config import load_settings

    schema: dict[str, Any] = create_app(load_settings(None, environ={})).openapi()
    return schema


def canonical_json(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def schema_digest(schema: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(schema).encode()).hexdigest()
