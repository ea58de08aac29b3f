"""The repository stands on its own: no file reads a sibling checkout or a path on someone's machine.

A fresh clone (CI runs from one) has nothing beside it, so a test, benchmark, doc example or default
that names ``../shared`` or ``/home/<someone>`` works on one laptop and fails everywhere else. The
forbidden patterns are assembled from pieces, and this file (whose examples must match) is skipped.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

THIS_FILE = Path(__file__).resolve()
ROOT = THIS_FILE.parents[2]
SCANNED = ("routeiq", "tests", "benchmarks", "docs", "config", "scripts", ".ci", "data/benchmarks")
SCANNED_FILES = ("README.md", "Makefile", "pyproject.toml")
SKIPPED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})

SLASH = "/"
FORBIDDEN = [
    re.compile(re.escape(".." + SLASH + "shared")),
    # Absolute machine paths: home folders, this sandbox's work root, mounted volumes, Windows users.
    *(
        re.compile(r"(?<![\w.])" + re.escape(SLASH + name + SLASH))
        for name in ("work", "home", "Users", "root", "mnt")
    ),
    re.compile(r"[A-Za-z]:" + re.escape("\\") + r"{1,2}Users"),
    # A path assembled from parts: ... / "shared" / "data"
    re.compile(r"""["']shared["']\s*/\s*["']data["']"""),
    # Climbing from the repository root to its parent folder.
    re.compile(r"\bROOT\.parent\b"),
]
# ``Path(__file__).resolve().parents[N]`` or ``.parent.parent...``: how far up from the file it climbs.
PARENTS_INDEX = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")
PARENT_CHAIN = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?((?:\.parent\b)+)")


def ignored_by_git() -> set[Path]:
    """Files git ignores (benchmark results, caches): local output, never part of the project."""
    if not (ROOT / ".git").exists():
        return set()
    listing = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", *SCANNED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {ROOT / line for line in listing.stdout.splitlines()}


def scanned_files() -> list[Path]:
    files = [ROOT / name for name in SCANNED_FILES if (ROOT / name).is_file()]
    ignored = ignored_by_git()
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*")):
            skipped = SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts) or path == THIS_FILE
            if path.is_file() and not skipped and path not in ignored:
                files.append(path)
    return files


def text_of(path: Path) -> str | None:
    """The file as text, or None for binary data (gzip, numpy) that cannot name a path readably."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def violations(path: Path, text: str) -> list[str]:
    relative = path.relative_to(ROOT)
    levels_to_root = len(relative.parts)  # parents[levels_to_root - 1] is the repository root
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{relative}:{number}"
        found += [
            f"{where}: {pattern.pattern!r}: {line.strip()}" for pattern in FORBIDDEN if pattern.search(line)
        ]
        climbs = [int(match) + 1 for match in PARENTS_INDEX.findall(line)]
        climbs += [chain.count(".parent") for chain in PARENT_CHAIN.findall(line)]
        found += [
            f"{where}: climbs {climb} levels from a file {levels_to_root} deep: {line.strip()}"
            for climb in climbs
            if climb > levels_to_root
        ]
    return found


def test_no_file_names_a_path_outside_the_repository() -> None:
    files = scanned_files()
    assert len(files) > 100, "the scan found too few files: is ROOT right?"
    problems = [
        problem for path in files if (text := text_of(path)) is not None for problem in violations(path, text)
    ]
    assert not problems, "files reach outside the repository:\n" + "\n".join(problems)


def test_the_scan_catches_each_kind_of_escape() -> None:
    """The patterns work: each of these lines, written into a file two levels deep, is caught."""
    escapes = [
        "DATA = '.." + SLASH + "shared/data/routellm-mmlu'",
        "open('" + SLASH + "work" + SLASH + "shared/x.csv')",
        "cache = '" + SLASH + "home" + SLASH + "alice/.cache'",
        "p = '" + SLASH + "Users" + SLASH + "bob/data'",
        "x = Path(__file__).resolve().parents[4] / 'shared' / 'data'",
        "y = Path(__file__).parent.parent.parent / 'data'",
        "z = ROOT.parent / 'elsewhere'",
    ]
    fake = ROOT / "routeiq" / "module.py"  # parents[1] is the repository root, parents[2] its parent
    for line in escapes:
        assert violations(fake, line), line
    fine = [
        "DATA = Path(__file__).resolve().parents[1] / 'data' / 'benchmarks'",
        "url = 'sqlite:" + SLASH + SLASH + "/tmp/x.db'",
        "see docs" + SLASH + "routing.md and data" + SLASH + "benchmarks" + SLASH + "README.md",
    ]
    for line in fine:
        assert not violations(fake, line), line
