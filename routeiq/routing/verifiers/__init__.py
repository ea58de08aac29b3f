"""Cascade verifiers: how likely is a step's answer to be right, as a score in 0..1.

Each verifier is small and strict: anything it cannot read (a judge that answers off-format, an
upstream that sent no log-probabilities) raises ``VerifierFailed``, and the cascade escalates, so a
verifier's failure costs a more expensive answer, never the request.

- ``scorer``: the trained answer verifier (``routeiq train --algo verifier``), loaded once, verified.
- ``judge``: a call to another routing group, whose whole answer must be a number or YES/NO.
- ``logprobs``: the cheap answer's own confidence, from the token log-probabilities it came with.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from routeiq.settings import CascadeVerifierSettings


class VerifierFailed(Exception):
    """The verifier could not score the answer (the cascade escalates)."""


# A judge's call: (group, chat body) -> the judge's answer text; raises VerifierFailed on failure.
JudgeCall = Callable[[str, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Answer:
    """A step's answer, as the verifiers see it."""

    prompt: str  # the latest user turn
    text: str  # the first choice's content
    completion: dict[str, Any]  # the whole parsed answer (log-probabilities live there)


class Verifier(Protocol):
    name: str
    wants_logprobs: bool  # the step's call asks the upstream for token log-probabilities

    async def score(self, answer: Answer, judge: JudgeCall) -> float: ...


def build_verifier(config: CascadeVerifierSettings, key: str, hmac_key: str | None) -> Verifier:
    """The configured verifier; ``ValueError`` naming ``key`` when it cannot be built."""
    if config.kind == "scorer":
        from routeiq.routing.learned.artifacts import ArtifactError
        from routeiq.routing.learned.verifier import load_verifier
        from routeiq.routing.verifiers.scorer import ScorerVerifier

        assert config.artifact is not None  # (settings refuse a scorer without one)
        try:
            return ScorerVerifier(load_verifier(config.artifact, hmac_key=hmac_key))
        except (ArtifactError, OSError, ValueError) as error:
            raise ValueError(f"{key}.artifact: cannot load the answer verifier: {error}") from None
    if config.kind == "judge":
        from routeiq.routing.verifiers.judge import JudgeVerifier

        assert config.group is not None
        return JudgeVerifier(config.group, config.format)
    from routeiq.routing.verifiers.logprobs import LogprobVerifier

    return LogprobVerifier()
