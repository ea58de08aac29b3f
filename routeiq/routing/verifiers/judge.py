"""A judge model as a cascade verifier: a configured routing group is asked whether the answer is
right, and its whole reply must be in the strict format configured. Anything else (prose around the
number, "Yes, because...", an empty reply) is a verifier failure, never a guess."""

from __future__ import annotations

import re
from typing import Any, Literal

from routeiq.routing.verifiers import Answer, JudgeCall, VerifierFailed

SCORE = re.compile(r"(?:0(?:\.\d{1,6})?|1(?:\.0{1,6})?|\.\d{1,6})")
YES_NO = {"yes": 1.0, "no": 0.0}
MAX_TEXT = 16_000  # characters of question and of answer the judge is shown

INSTRUCTIONS = {
    "score": "You check answers. Reply with only a number from 0 to 1: the probability that the answer "
    "to the question is correct. No other words.",
    "yes_no": "You check answers. Reply with only YES if the answer to the question is correct, or only NO "
    "if it is not. No other words.",
}


def parse_judgement(text: str, answer_format: Literal["score", "yes_no"]) -> float:
    """The judge's reply as a score in 0..1; ``VerifierFailed`` unless it is exactly the format
    (surrounding whitespace aside)."""
    reply = text.strip()
    if answer_format == "yes_no":
        if reply.lower() in YES_NO:
            return YES_NO[reply.lower()]
        raise VerifierFailed(f"the judge answered {reply[:40]!r}, not YES or NO")
    if SCORE.fullmatch(reply):
        return float(reply)
    raise VerifierFailed(f"the judge answered {reply[:40]!r}, not a number from 0 to 1")


def judge_body(answer: Answer, answer_format: Literal["score", "yes_no"]) -> dict[str, Any]:
    question = f"Question:\n{answer.prompt[:MAX_TEXT]}\n\nAnswer:\n{answer.text[:MAX_TEXT]}"
    return {
        "messages": [
            {"role": "system", "content": INSTRUCTIONS[answer_format]},
            {"role": "user", "content": question},
        ],
        "temperature": 0,
        "max_tokens": 8,
    }


class JudgeVerifier:
    name = "judge"
    wants_logprobs = False

    def __init__(self, group: str, answer_format: Literal["score", "yes_no"]) -> None:
        self.group = group
        self._format = answer_format

    async def score(self, answer: Answer, judge: JudgeCall) -> float:
        reply = await judge(self.group, judge_body(answer, self._format))
        return parse_judgement(reply, self._format)
