"""Training data for learned routers: prompts with a score per model, and a split that never leaks.

Two on-disk shapes are read:

- RouteLLM-style CSV folders: a ``prompt`` column plus one boolean (or numeric) column per model, one
  file per subject (``data/benchmarks/routellm-mmlu``). A ``<model>_response`` column next to a
  model's column holds that model's answer text and is not a score: it is skipped. A
  ``contaminated_prompts.jsonl`` beside them lists prompts (``eval_prompt``) that leaked into
  someone's training data: they are dropped.
- JSON lines ``{"prompt": ..., "scores": {"model": score, ...}}``; every line must score the same models.

Any of these files may be gzipped (``.csv.gz``, ``.jsonl.gz``): the vendored benchmark data is.

The split is by sha256 of the prompt, not by position or a random draw, so it is the same on every
machine and run, duplicate prompts always land on the same side, and train and test never overlap.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

CONTAMINATED_FILE = "contaminated_prompts.jsonl"
CSV_SUFFIXES = (".csv", ".csv.gz")
RESPONSE_SUFFIX = "_response"
# The benchmark data shipped with the repository (see data/benchmarks/README.md).
BENCHMARKS_DIR = Path(__file__).resolve().parents[3] / "data" / "benchmarks"
TRUE_WORDS = frozenset({"true", "yes", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "no", "0", "0.0"})

CSV_FIELD_LIMIT = 1 << 24  # long multi-paragraph prompts can exceed csv's 128 KiB default


class DatasetError(ValueError):
    """The training data cannot be read as prompts with per-model scores (the message says where)."""


@dataclass(frozen=True)
class RoutingDataset:
    """Prompts and a score per model (``scores[i, j]`` = how well ``models[j]`` did on ``prompts[i]``).

    ``sources`` records where each prompt came from (a CSV file stem such as ``mmlu_anatomy``, or the
    JSONL name); it is metadata for summaries, never a feature, because a live prompt has no source.
    """

    prompts: tuple[str, ...]
    models: tuple[str, ...]
    scores: np.ndarray
    sources: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.scores.shape != (len(self.prompts), len(self.models)):
            raise DatasetError(
                f"scores shape {self.scores.shape} does not match {len(self.prompts)} prompts x "
                f"{len(self.models)} models"
            )
        if self.sources and len(self.sources) != len(self.prompts):
            raise DatasetError("one source per prompt")

    def __len__(self) -> int:
        return len(self.prompts)

    def column(self, model: str) -> np.ndarray:
        """The scores of one model, by name."""
        try:
            return self.scores[:, self.models.index(model)]
        except ValueError:
            raise DatasetError(
                f"model {model!r} is not in the data (models: {', '.join(self.models)})"
            ) from None

    def subset(self, indices: Sequence[int] | np.ndarray) -> RoutingDataset:
        index = np.asarray(indices, dtype=np.int64)
        return RoutingDataset(
            prompts=tuple(self.prompts[i] for i in index),
            models=self.models,
            scores=self.scores[index],
            sources=tuple(self.sources[i] for i in index) if self.sources else (),
        )

    def summary(self) -> dict[str, Any]:
        """What the data was, for the artifact manifest and reports: sizes and mean score per model."""
        means = self.scores.mean(axis=0) if len(self) else np.zeros(len(self.models))
        return {
            "prompts": len(self),
            "models": list(self.models),
            "mean_score": {
                model: round(float(mean), 6) for model, mean in zip(self.models, means, strict=True)
            },
            "sources": len(set(self.sources)),
            "prompts_sha256": prompts_digest(self.prompts),
        }


def prompts_digest(prompts: Iterable[str]) -> str:
    """One sha256 over the prompts in order: identifies the exact training set without storing it."""
    digest = hashlib.sha256()
    for prompt in prompts:
        digest.update(hashlib.sha256(prompt.encode("utf-8")).digest())
    return digest.hexdigest()


def score_value(value: str, where: str) -> float:
    text = value.strip().lower()
    if text in TRUE_WORDS:
        return 1.0
    if text in FALSE_WORDS:
        return 0.0
    try:
        number = float(text)
    except ValueError:
        raise DatasetError(f"{where}: {value!r} is neither a boolean nor a number") from None
    if not math.isfinite(number):
        raise DatasetError(f"{where}: score {value!r} is not finite")
    return number


def open_text(path: Path) -> IO[str]:
    """A text file, or a gzipped one when its name ends in ``.gz`` (newlines kept as written, for csv)."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _read_lines(path: Path) -> list[str]:
    with open_text(path) as handle:
        return handle.read().splitlines()


def stem(path: Path) -> str:
    """The file's name without its data suffixes: ``mmlu_anatomy`` for ``mmlu_anatomy.csv.gz``."""
    name = path.name.removesuffix(".gz")
    return name.rsplit(".", 1)[0] if "." in name else name


def contamination_file(folder: Path) -> Path:
    plain = folder / CONTAMINATED_FILE
    gzipped = folder / f"{CONTAMINATED_FILE}.gz"
    return gzipped if gzipped.exists() and not plain.exists() else plain


def read_contaminated(path: Path) -> frozenset[str]:
    """Prompts listed under ``eval_prompt`` in a contamination file (a missing file lists none)."""
    if not path.exists():
        return frozenset()
    prompts: set[str] = set()
    for number, line in enumerate(_read_lines(path), 1):
        if line.strip():
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("eval_prompt"), str):
                raise DatasetError(f"{path}:{number}: expected an object with an 'eval_prompt' string")
            prompts.add(record["eval_prompt"])
    return frozenset(prompts)


def _score_columns(header: list[str]) -> list[int]:
    """Indices of the model columns: all after ``prompt`` except ``<model>_response`` answer texts."""
    names = set(header[1:])
    return [
        i
        for i, name in enumerate(header)
        if i > 0 and not (name.endswith(RESPONSE_SUFFIX) and name.removesuffix(RESPONSE_SUFFIX) in names)
    ]


def csv_files(folder: Path) -> list[Path]:
    """The folder's ``*.csv`` and ``*.csv.gz`` files, sorted by name."""
    return sorted(path for path in folder.iterdir() if path.name.endswith(CSV_SUFFIXES))


def load_csv_folder(folder: Path, *, drop_contaminated: bool = True) -> RoutingDataset:
    """Every ``*.csv`` / ``*.csv.gz`` in a folder (sorted by name), all with the same model columns."""
    files = csv_files(folder)
    if not files:
        raise DatasetError(f"{folder}: no CSV files")
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    contaminated = read_contaminated(contamination_file(folder)) if drop_contaminated else frozenset()
    models: tuple[str, ...] | None = None
    prompts: list[str] = []
    rows: list[list[float]] = []
    sources: list[str] = []
    for path in files:
        with open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header or header[0] != "prompt" or len(header) < 2:
                raise DatasetError(f"{path}: the first column must be 'prompt', followed by one per model")
            columns = _score_columns(header)
            file_models = tuple(header[i] for i in columns)
            if models is None:
                models = file_models
            elif file_models != models:
                raise DatasetError(f"{path}: model columns {file_models} differ from {models}")
            for number, row in enumerate(reader, 2):
                if len(row) != len(header):
                    raise DatasetError(f"{path}:{number}: expected {len(header)} columns, got {len(row)}")
                if row[0] in contaminated:
                    continue
                prompts.append(row[0])
                rows.append([score_value(row[i], f"{path}:{number}: {header[i]}") for i in columns])
                sources.append(stem(path))
    assert models is not None
    return RoutingDataset(tuple(prompts), models, _matrix(rows, len(models)), tuple(sources))


def load_jsonl(path: Path) -> RoutingDataset:
    """JSON lines of ``{"prompt": str, "scores": {model: number | bool}}``, all scoring the same models."""
    models: tuple[str, ...] | None = None
    prompts: list[str] = []
    rows: list[list[float]] = []
    for number, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{where}: not JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise DatasetError(f"{where}: expected an object with a 'prompt' string")
        scores = record.get("scores")
        if not isinstance(scores, dict) or not scores:
            raise DatasetError(f"{where}: expected 'scores' to map model names to numbers")
        line_models = tuple(sorted(scores))
        if models is None:
            models = line_models
        elif line_models != models:
            raise DatasetError(f"{where}: scores models {line_models} differ from {models}")
        prompts.append(record["prompt"])
        rows.append([score_value(str(scores[model]), f"{where}: {model}") for model in models])
    if models is None:
        raise DatasetError(f"{path}: no records")
    return RoutingDataset(tuple(prompts), models, _matrix(rows, len(models)), (stem(path),) * len(prompts))


def _matrix(rows: list[list[float]], width: int) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)


def load_dataset(path: Path | str, *, drop_contaminated: bool = True) -> RoutingDataset:
    """A CSV folder, one CSV file, or a JSON-lines file (each optionally gzipped), chosen by ``path``."""
    location = Path(path)
    if location.is_dir():
        return load_csv_folder(location, drop_contaminated=drop_contaminated)
    if not location.exists():
        raise DatasetError(f"{location}: no such file or folder")
    if location.name.lower().endswith(CSV_SUFFIXES):
        # One CSV: read it as a folder of one, honouring a contamination list beside it.
        dataset = load_csv_folder(location.parent, drop_contaminated=drop_contaminated)
        keep = [i for i, source in enumerate(dataset.sources) if source == stem(location)]
        return dataset.subset(keep)
    return load_jsonl(location)


def split_fraction(prompt: str, salt: str = "") -> float:
    """Where a prompt falls in [0, 1): the first 8 bytes of sha256(salt + prompt)."""
    digest = hashlib.sha256((salt + prompt).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_hash(
    dataset: RoutingDataset, test_fraction: float = 0.2, *, salt: str = ""
) -> tuple[RoutingDataset, RoutingDataset]:
    """Deterministic ``(train, test)``: a prompt is test when its hash fraction is below ``test_fraction``."""
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError("test_fraction must be between 0 and 1")
    is_test = np.fromiter((split_fraction(p, salt) < test_fraction for p in dataset.prompts), dtype=bool)
    return dataset.subset(np.flatnonzero(~is_test)), dataset.subset(np.flatnonzero(is_test))
