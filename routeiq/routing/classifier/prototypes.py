"""The hand-written prototype prompts the centroids are built from (data/classifier/prototypes.yaml).

Each prompt carries a task category and a tier, so the tier centroids span every category and
the simple/complex direction is not confounded with topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

TIERS = ("simple", "complex")
CATEGORIES = (
    "code_generation",
    "creative_writing",
    "analysis",
    "summarization",
    "translation",
    "conversation",
    "reasoning",
    "tool_use",
)


@dataclass(frozen=True)
class Prototype:
    text: str
    tier: str
    category: str


def load_prototypes(path: Path) -> list[Prototype]:
    """Parse and validate the YAML; order is the file's order (the build depends on it)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    categories = raw.get("categories") if isinstance(raw, dict) else None
    if not isinstance(categories, dict):
        raise ValueError(f"{path}: expected a top-level 'categories' mapping")
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"{path}: unknown categories {unknown}")
    out: list[Prototype] = []
    for category in CATEGORIES:
        tiers = categories.get(category)
        if not isinstance(tiers, dict) or set(tiers) != set(TIERS):
            raise ValueError(f"{path}: category {category!r} needs exactly the tiers {TIERS}")
        for tier in TIERS:
            texts = tiers[tier]
            if not texts or not all(isinstance(text, str) and text.strip() for text in texts):
                raise ValueError(f"{path}: {category}/{tier} needs a non-empty list of prompts")
            out.extend(Prototype(text=text.strip(), tier=tier, category=category) for text in texts)
    return out
