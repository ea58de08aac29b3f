"""Prompt-injection heuristics: phrases that try to override the system's instructions.

Each pattern has a weight; a call whose user (and tool) messages score at least ``threshold`` is
refused. These are heuristics — they catch the common, lazy attacks cheaply and say which pattern
matched; they are not a classifier and do not claim to stop a determined attacker.

The shipped patterns are written to take linear time on any text (Python's engine backtracks, so
that is on us). Operators' ``extra_patterns`` are compiled with RE2 instead, whose matching time is
linear by construction whatever the pattern: a pattern that would need backtracking (lookarounds,
backreferences) is refused at startup rather than left to freeze a worker on a crafted prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator

from routeiq.governance.call import GovernedCall
from routeiq.plugins.base import DEFAULT_MAX_SCAN_CHARS, GuardrailBlocked, Plugin, check_scan_size
from routeiq.plugins.text import texts


class Matcher(Protocol):
    def search(self, text: str, /) -> object: ...


@dataclass(frozen=True, slots=True)
class Heuristic:
    name: str
    pattern: Matcher
    weight: float


def _heuristic(name: str, pattern: str, weight: float = 1.0) -> Heuristic:
    return Heuristic(name, re.compile(pattern, re.IGNORECASE | re.MULTILINE), weight)


def operator_pattern(pattern: str) -> Matcher:
    """An operator's pattern in RE2 (linear time), case-insensitive, ``^``/``$`` at line ends like
    the shipped ones; ``re2.error`` when RE2 cannot express it."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the config error names the pattern; no stderr noise besides
    return re2.compile(f"(?m){pattern}", options)


_PRIOR = r"(?:all\s+|any\s+|the\s+|your\s+|of\s+)*(?:previous|prior|above|earlier|preceding|initial|original)"
_ORDERS = r"(?:instructions?|prompts?|rules|directions|guidelines|context|messages?)"

HEURISTICS: tuple[Heuristic, ...] = (
    _heuristic("ignore_instructions", rf"\b(?:ignore|disregard|skip|override)\s+{_PRIOR}\s+{_ORDERS}"),
    _heuristic("forget_instructions", rf"\bforget\s+(?:everything|all|{_PRIOR})\b.{{0,40}}?\b{_ORDERS}\b"),
    _heuristic(
        "reveal_system_prompt",
        r"\b(?:reveal|print|show|repeat|output|leak|tell me)\s+(?:me\s+)?(?:your|the)\s+"
        r"(?:system\s+prompt|hidden\s+(?:instructions|prompt)|initial\s+(?:instructions|prompt))",
    ),
    _heuristic(
        "jailbreak_persona",
        r"\b(?:you\s+are\s+now|act\s+as|pretend\s+to\s+be)\s+(?:DAN|an?\s+unrestricted|jailbroken)",
    ),
    _heuristic("do_anything_now", r"\bdo\s+anything\s+now\b"),
    _heuristic("developer_mode", r"\b(?:developer|god|debug)\s+mode\s+(?:enabled|activated|on)\b"),
    _heuristic(
        "disable_safety",
        r"\b(?:bypass|disable|ignore|override|turn\s+off)\s+(?:your\s+|the\s+|all\s+)?"
        r"(?:safety|content)\s+(?:filters?|policy|policies|guidelines|restrictions)",
    ),
    _heuristic(
        "no_restrictions", r"\bwithout\s+(?:any\s+)?(?:restrictions|limitations|filters|rules)\b", 0.5
    ),
    # Horizontal space only around the "##": with ``\s*`` a run of blank lines would be rescanned
    # from every line start (quadratic).
    _heuristic(
        "role_markers", r"<\|im_start\|>\s*system|\[/?(?:system|INST)\]|^[ \t]*#{2,}[ \t]*system[ \t]*:", 0.5
    ),
)


def score(text: str, heuristics: tuple[Heuristic, ...] = HEURISTICS) -> tuple[float, list[str]]:
    """The summed weight of the heuristics that match, and their names."""
    matched = [heuristic for heuristic in heuristics if heuristic.pattern.search(text)]
    return sum(heuristic.weight for heuristic in matched), [heuristic.name for heuristic in matched]


class InjectionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(default=1.0, gt=0, description="Refuse at or above this summed weight.")
    roles: list[str] = Field(
        default_factory=lambda: ["user", "tool", "function"],
        description="Chat roles scanned (system prompts are the operator's, not an attack).",
    )
    extra_patterns: list[str] = Field(
        default_factory=list,
        description="More regular expressions (RE2 syntax, case-insensitive), weight 1 each.",
    )
    action: Literal["block", "log"] = Field(default="block", description="`log` only reports a match.")
    max_scan_chars: int = Field(
        default=DEFAULT_MAX_SCAN_CHARS,
        ge=1,
        description="Longest text (all of a call's texts together) checked; longer: see docs/plugins.md.",
    )

    @field_validator("extra_patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                operator_pattern(pattern)
            except re2.error as error:
                reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else error
                raise ValueError(
                    f"not a valid regular expression {pattern!r} for RE2 (linear-time matching: "
                    f"no lookarounds or backreferences): {reason}"
                ) from None
        return patterns


class InjectionPlugin(Plugin[InjectionSettings]):
    name = "prompt_injection"
    version = "1.0.0"
    priority = 20
    settings_model = InjectionSettings
    waits_only_in_run_cpu = True

    def __init__(self, settings: InjectionSettings) -> None:
        super().__init__(settings)
        extra = tuple(
            Heuristic(f"custom_{i}", operator_pattern(pattern), 1.0)
            for i, pattern in enumerate(settings.extra_patterns)
        )
        self._heuristics = HEURISTICS + extra
        self._roles = frozenset(settings.roles)

    async def pre_call(self, call: GovernedCall) -> None:
        call.guardrails.append(self.name)
        found = check_scan_size(texts(call.body, self._roles), self.settings.max_scan_chars)
        total, matched = await self.run_cpu(lambda: self._score_all(found), sum(map(len, found)))
        if total < self.settings.threshold:
            return
        if self.settings.action == "log":
            call.add_headers({"x-routeiq-injection-suspected": ",".join(sorted(set(matched)))})
            return
        raise GuardrailBlocked(
            400,
            "prompt_injection",
            f"the request looks like a prompt-injection attempt ({', '.join(sorted(set(matched)))})",
        )

    def _score_all(self, found: list[str]) -> tuple[float, list[str]]:
        total = 0.0
        matched: list[str] = []
        for text in found:
            points, names = score(text, self._heuristics)
            total += points
            matched += names
        return total, matched
