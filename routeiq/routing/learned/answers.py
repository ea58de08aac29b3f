"""Training data for answer verifiers: (prompt, a model's answer, was it correct) triples.

Two shapes are read, gzipped or not:

- a RouteLLM-style CSV folder (or one CSV) whose model column has a ``<model>_response`` column
  beside it holding that model's answer text (``data/benchmarks/routellm-gsm8k-a``); the verifier
  is for the cheap model, so without ``model`` the lowest-scoring model with answers is taken. A
  ``contaminated_prompts.jsonl`` beside the CSVs is honoured as for routers.
- JSON lines ``{"prompt": ..., "answer": ..., "correct": true}``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routeiq.routing.learned.dataset import (
    CSV_FIELD_LIMIT,
    CSV_SUFFIXES,
    RESPONSE_SUFFIX,
    DatasetError,
    contamination_file,
    csv_files,
    open_text,
    read_contaminated,
    score_value,
)


@dataclass(frozen=True)
class AnswerSet:
    """One model's answers: ``correct[i]`` says whether ``answers[i]`` to ``prompts[i]`` was right."""

    model: str
    prompts: tuple[str, ...]
    answers: tuple[str, ...]
    correct: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, indices: np.ndarray) -> AnswerSet:
        index = np.asarray(indices, dtype=np.int64)
        return AnswerSet(
            self.model,
            tuple(self.prompts[i] for i in index),
            tuple(self.answers[i] for i in index),
            self.correct[index],
        )


def _csv_answers(files: list[Path], contaminated: frozenset[str], model: str | None) -> AnswerSet:
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    rows: dict[str, list[tuple[str, str, float]]] = {}
    for path in files:
        with open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header or header[0] != "prompt":
                raise DatasetError(f"{path}: the first column must be 'prompt'")
            answered = [name for name in header[1:] if f"{name}{RESPONSE_SUFFIX}" in header]
            if not answered:
                raise DatasetError(f"{path}: no '<model>{RESPONSE_SUFFIX}' column: no answers to verify")
            for number, row in enumerate(reader, 2):
                if len(row) != len(header):
                    raise DatasetError(f"{path}:{number}: expected {len(header)} columns, got {len(row)}")
                if row[0] in contaminated:
                    continue
                for name in answered:
                    score = score_value(row[header.index(name)], f"{path}:{number}: {name}")
                    rows.setdefault(name, []).append(
                        (row[0], row[header.index(f"{name}{RESPONSE_SUFFIX}")], score)
                    )
    if model is None:  # the verifier guards the cheap model: the one that is right least often
        model = min(rows, key=lambda name: float(np.mean([score for *_, score in rows[name]])))
    if model not in rows:
        raise DatasetError(f"no answers of model {model!r} (models with answers: {', '.join(sorted(rows))})")
    triples = rows[model]
    return AnswerSet(
        model,
        tuple(prompt for prompt, _, _ in triples),
        tuple(answer for _, answer, _ in triples),
        np.array([score > 0.5 for *_, score in triples]),
    )


def _jsonl_answers(path: Path) -> AnswerSet:
    prompts, answers, correct = [], [], []
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not (
                isinstance(record, dict)
                and isinstance(record.get("prompt"), str)
                and isinstance(record.get("answer"), str)
                and isinstance(record.get("correct"), bool)
            ):
                raise DatasetError(f"{path}:{number}: expected prompt and answer strings, correct a boolean")
            prompts.append(record["prompt"])
            answers.append(record["answer"])
            correct.append(record["correct"])
    if not prompts:
        raise DatasetError(f"{path}: no records")
    return AnswerSet(path.name, tuple(prompts), tuple(answers), np.array(correct, dtype=bool))


def load_answers(path: Path | str, model: str | None = None, *, drop_contaminated: bool = True) -> AnswerSet:
    """A CSV folder, one CSV, or a JSON-lines file of triples (``model`` applies to CSVs)."""
    location = Path(path)
    if location.is_dir() or location.name.lower().endswith(CSV_SUFFIXES):
        folder = location if location.is_dir() else location.parent
        files = csv_files(folder) if location.is_dir() else [location]
        if not files or not all(file.exists() for file in files):
            raise DatasetError(f"{location}: no CSV files")
        contaminated = read_contaminated(contamination_file(folder)) if drop_contaminated else frozenset()
        return _csv_answers(files, contaminated, model)
    if not location.exists():
        raise DatasetError(f"{location}: no such file or folder")
    return _jsonl_answers(location)
