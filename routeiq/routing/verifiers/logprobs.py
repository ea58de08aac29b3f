"""Token log-probability confidence: the geometric mean of the answer's token probabilities.

The cascade asks the step's upstream for ``logprobs`` when this verifier is configured; an upstream
that ignores the request (many do not return them) leaves the verifier nothing to read, and the
request escalates."""

from __future__ import annotations

import math
from typing import Any

from routeiq.routing.verifiers import Answer, JudgeCall, VerifierFailed


def logprob_confidence(completion: dict[str, Any]) -> float:
    """exp(mean token log-probability) of the first choice; ``VerifierFailed`` when the answer carries
    none, or carries anything that is not a log-probability (a finite number <= 0)."""
    try:
        tokens = completion["choices"][0]["logprobs"]["content"]
    except (KeyError, IndexError, TypeError):
        raise VerifierFailed("the answer carries no token log-probabilities") from None
    if not isinstance(tokens, list) or not tokens:
        raise VerifierFailed("the answer carries no token log-probabilities")
    values = []
    for token in tokens:
        value = token.get("logprob") if isinstance(token, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise VerifierFailed("a token's log-probability is not a number")
        if not math.isfinite(value) or value > 0:
            raise VerifierFailed(f"a token's log-probability is {value}, not a finite number <= 0")
        values.append(float(value))
    return math.exp(sum(values) / len(values))


class LogprobVerifier:
    name = "logprobs"
    wants_logprobs = True

    async def score(self, answer: Answer, judge: JudgeCall) -> float:
        return logprob_confidence(answer.completion)
