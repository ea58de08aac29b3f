"""The trained answer verifier as a cascade verifier: ``p_correct`` of the (prompt, answer) pair."""

from __future__ import annotations

import math

from routeiq.routing.learned.verifier import AnswerVerifier
from routeiq.routing.verifiers import Answer, JudgeCall, VerifierFailed


class ScorerVerifier:
    name = "scorer"
    wants_logprobs = False

    def __init__(self, model: AnswerVerifier) -> None:
        self._model = model  # loaded and verified (sha256, HMAC when a key is set) once, at startup

    async def score(self, answer: Answer, judge: JudgeCall) -> float:
        # Text cues and one dot product: well under a millisecond, so it runs on the event loop.
        value = float(self._model.p_correct([answer.prompt], [answer.text])[0])
        if not math.isfinite(value):
            raise VerifierFailed("the answer verifier gave no finite score")
        return value
