"""PII redaction: find emails, phone numbers, payment cards, national ids and IP addresses in a
model call's text, and mask them before the upstream sees them (or refuse the call).

Detection is regular expressions plus a validator per kind, so that look-alikes pass: a card number
must pass the Luhn check, an SSN must use a possible area/group/serial, an IP must parse, a phone
number must carry 10 to 15 digits. Where matches overlap the earlier kind in ``KINDS`` wins (a card
number is not also a phone number).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from routeiq.governance.call import GovernedCall
from routeiq.plugins.base import GuardrailBlocked, Plugin
from routeiq.plugins.text import rewrite_texts, texts

PiiKind = Literal["email", "card", "national_id", "ip", "phone"]
KINDS: tuple[PiiKind, ...] = ("email", "card", "national_id", "ip", "phone")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def _card(text: str) -> bool:
    digits = _digits(text)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _ssn(text: str) -> bool:
    area, group, serial = text.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _national_id(text: str) -> bool:
    return _ssn(text) if "-" in text else True  # the UK NINO pattern is specific enough alone


def _ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _phone(text: str) -> bool:
    return 10 <= len(_digits(text)) <= 15


def _always(text: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Detector:
    kind: PiiKind
    pattern: re.Pattern[str]
    valid: Callable[[str], bool]


DETECTORS: dict[PiiKind, Detector] = {
    detector.kind: detector
    for detector in (
        Detector(
            "email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), _always
        ),
        Detector("card", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _card),
        Detector(
            "national_id",
            # US SSN (123-45-6789) or UK National Insurance number (QQ123456C)
            re.compile(r"(?<![\w-])(?:\d{3}-\d{2}-\d{4}|[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D])(?![\w-])"),
            _national_id,
        ),
        Detector(
            "ip",
            re.compile(
                r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"
                r"|(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
            ),
            _ip,
        ),
        Detector("phone", re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{7,20}\d(?![\w])"), _phone),
    )
}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: PiiKind
    start: int
    end: int


def find_pii(text: str, kinds: tuple[PiiKind, ...] = KINDS) -> list[Finding]:
    """Non-overlapping findings in text order; on overlap the earlier kind in ``KINDS`` wins."""
    taken: list[Finding] = []
    for kind in KINDS:
        if kind not in kinds:
            continue
        detector = DETECTORS[kind]
        for match in detector.pattern.finditer(text):
            start, end = match.span()
            if any(start < other.end and other.start < end for other in taken):
                continue
            if detector.valid(match.group()):
                taken.append(Finding(kind, start, end))
    return sorted(taken, key=lambda finding: finding.start)


def mask(text: str, findings: list[Finding]) -> str:
    pieces: list[str] = []
    position = 0
    for finding in findings:
        pieces += [text[position : finding.start], f"[{finding.kind.upper()}]"]
        position = finding.end
    pieces.append(text[position:])
    return "".join(pieces)


class PiiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["mask", "block"] = Field(
        default="mask", description="`mask` replaces each finding with [KIND]; `block` refuses the call."
    )
    entities: list[PiiKind] = Field(default_factory=lambda: list(KINDS), description="What to look for.")
    block_status: Literal[400, 403] = Field(default=400, description="Status of a refused call.")


class PiiPlugin(Plugin[PiiSettings]):
    name = "pii"
    version = "1.0.0"
    priority = 10  # first: later guardrails (and moderation endpoints) should not see the PII either
    settings_model = PiiSettings

    def __init__(self, settings: PiiSettings) -> None:
        super().__init__(settings)
        self._kinds = tuple(settings.entities)

    async def pre_call(self, call: GovernedCall) -> None:
        call.guardrails.append(self.name)
        if self.settings.mode == "block":
            found = {finding.kind for text in texts(call.body) for finding in find_pii(text, self._kinds)}
            if found:
                raise GuardrailBlocked(
                    self.settings.block_status,
                    "pii_detected",
                    f"the request contains personal data ({', '.join(sorted(found))})",
                )
            return
        rewrite_texts(call.body, self._redact)

    def _redact(self, text: str) -> str:
        findings = find_pii(text, self._kinds)
        return mask(text, findings) if findings else text
