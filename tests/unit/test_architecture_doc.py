"""docs/architecture.md stays true to the tree: every file it names exists, every package is in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()
NAMED_PATH = re.compile(r"`((?:routeiq|tests|docs)/[\w./]*)`")


def test_every_path_the_page_names_exists() -> None:
    named = set(NAMED_PATH.findall(DOC))
    assert len(named) > 40  # the step table alone names that many: a broken pattern must not pass
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_every_package_has_its_line() -> None:
    packages = sorted(path.name for path in (ROOT / "routeiq").iterdir() if (path / "__init__.py").exists())
    unlisted = [name for name in packages if f"`routeiq/{name}/" not in DOC]
    assert not unlisted, f"packages missing from docs/architecture.md: {unlisted}"
