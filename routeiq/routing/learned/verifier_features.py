"""What an answer verifier reads of (prompt, cheap model's answer): cheap, text-only checks.

A cascade asks the cheap model first and escalates when its answer looks wrong. These cues are the
ones that make an answer look wrong without a second model: arithmetic the answer itself gets wrong
(``3 x 60 = 170``, ``<<15+25=30>>``), a final number copied from the question, a non-integer or
missing final answer, hedging ("however", "assume", "approximately"), and how long and how stepwise
the answer is next to the question. Computed in well under a millisecond per answer; no model, no
eval(): arithmetic is checked by walking a parsed expression that may only hold numbers and
``+ - * /``.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence

import numpy as np

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# "<expression> = <number>": an expression of numbers, operators, brackets and spaces before an "=".
TIMES, DIVIDED = "\u00d7", "\u00f7"  # the multiplication and division signs answers write
# One greedy character class (no alternation): linear time on long answers; what it drags in before
# the expression (a word's trailing "x", spaces) is trimmed before parsing.
EQUATION = re.compile(rf"([-\d.,+*/x{TIMES}{DIVIDED}() ]+)=\s*\$?(-?[\d,]*\.?\d+)")
LEADING_JUNK = re.compile(r"^[^\d(-]+")
FINAL_MARKERS = re.compile(r"####|answer is|final answer|\\boxed", re.IGNORECASE)
HEDGES = re.compile(
    r"\b(however|assum\w*|approximately|roughly|about|cannot|can't|not possible|unclear|actually|"
    r"round\w*|might|maybe|perhaps|sorry|mistake)\b",
    re.IGNORECASE,
)
VERIFIER_FEATURES = (
    "answer_log_chars",
    "answer_log_lines",
    "prompt_log_chars",
    "answer_to_prompt_length",
    "equations",
    "wrong_equation_share",
    "has_final_marker",
    "final_is_integer",
    "final_in_prompt",
    "prompt_numbers_used",
    "hedges",
    "answer_numbers",
)
MAX_EXPRESSION = 80  # characters: longer "expressions" are prose the regex swallowed, not arithmetic


def _value(node: ast.AST) -> float:
    """The value of a parsed arithmetic expression; ``ValueError`` for anything but numbers and + - * /."""
    if isinstance(node, ast.Expression):
        return _value(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _value(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div) and right != 0:
            return left / right
    raise ValueError("not plain arithmetic")


def arithmetic(expression: str) -> float | None:
    """``"3 x 60"`` -> 180.0; None when it is not plain arithmetic (or has no operator at all)."""
    text = expression.strip().replace(",", "").replace(TIMES, "*").replace(DIVIDED, "/")
    text = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", text)
    if len(text) > MAX_EXPRESSION or not re.search(r"\d\s*[-+*/]\s*[\d(]", text):
        return None
    try:
        value = _value(ast.parse(text, mode="eval"))
    except (SyntaxError, ValueError, RecursionError):
        return None
    return value if math.isfinite(value) else None


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def equation_checks(answer: str) -> tuple[int, int]:
    """(equations checked, equations whose stated result is wrong by more than rounding)."""
    checked = wrong = 0
    for match in EQUATION.finditer(answer):
        expression = LEADING_JUNK.sub("", match.group(1))
        computed, stated = arithmetic(expression), _number(match.group(2))
        if computed is None or stated is None:
            continue
        checked += 1
        if abs(computed - stated) > max(0.01, 0.005 * abs(computed)):
            wrong += 1
    return checked, wrong


def final_number(answer: str) -> float | None:
    """The number after the last final-answer marker, else the last number in the answer."""
    markers = list(FINAL_MARKERS.finditer(answer))
    tail = answer[markers[-1].end() :] if markers else answer
    numbers = NUMBER.findall(tail) if markers else NUMBER.findall(answer)[-1:]
    if not numbers:
        return None
    return _number(numbers[0] if markers else numbers[-1])


def verifier_cues(prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """One row per (prompt, answer), columns in ``VERIFIER_FEATURES`` order (raw, not standardised)."""
    if len(prompts) != len(answers):
        raise ValueError("one answer per prompt")
    rows = np.zeros((len(prompts), len(VERIFIER_FEATURES)), dtype=np.float64)
    for row, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
        checked, wrong = equation_checks(answer)
        final = final_number(answer)
        prompt_numbers = {value for value in map(_number, NUMBER.findall(prompt)) if value is not None}
        answer_numbers = {value for value in map(_number, NUMBER.findall(answer)) if value is not None}
        rows[row] = (
            math.log1p(len(answer)),
            math.log1p(answer.count("\n")),
            math.log1p(len(prompt)),
            math.log1p(len(answer)) - math.log1p(len(prompt)),
            math.log1p(checked),
            wrong / checked if checked else 0.0,
            1.0 if FINAL_MARKERS.search(answer) else 0.0,
            1.0 if final is not None and float(final).is_integer() else 0.0,
            1.0 if final is not None and final in prompt_numbers else 0.0,
            len(prompt_numbers & answer_numbers) / len(prompt_numbers) if prompt_numbers else 1.0,
            math.log1p(len(HEDGES.findall(answer))),
            math.log1p(len(answer_numbers)),
        )
    return rows
