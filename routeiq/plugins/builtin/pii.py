"""PII redaction: find emails, phone numbers, payment cards, national ids and IP addresses in a
model call's text, and mask them before the upstream sees them (or refuse the call).

Detection is regular expressions plus a validator per kind, so that look-alikes pass: a card number
must pass the Luhn check, an SSN must use a possible area/group/serial, an IP must parse, a phone
number must carry 10 to 15 digits. Where matches overlap the earlier kind in ``KINDS`` wins (a card
number is not also a phone number).

Every pattern takes time linear in the text on any input, hostile included: each quantifier is
bounded (so one attempt at one position costs a constant), a pattern that could start anywhere starts
only after a boundary (a lookbehind that fails at once inside a run of digits or letters), and emails
are found from their ``@`` (a literal the engine skips to) with the local part read backwards from it,
instead of trying ``[A-Za-z0-9...]+@`` at every letter of a long word. Overlaps are checked by
bisection, not against every earlier finding.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from routeiq.governance.call import GovernedCall
from routeiq.plugins.base import DEFAULT_MAX_SCAN_CHARS, GuardrailBlocked, Plugin, check_scan_size
from routeiq.plugins.scan import finditer_windows
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
    # A character every match contains: a text without one is not scanned (most prose has no "@").
    needs: re.Pattern[str]


_DIGIT = re.compile(r"\d")


_LABEL = r"[A-Za-z0-9-]{1,63}"  # one DNS label
LOCAL_PART_MAX = 64  # RFC 5321's longest local part; a longer run has only its last 64 masked
# The local part read backwards from the "@": the reversed text just before it.
_LOCAL_PART_REVERSED = re.compile(rf"[A-Za-z0-9._%+-]{{1,{LOCAL_PART_MAX}}}")

DETECTORS: dict[PiiKind, Detector] = {
    detector.kind: detector
    for detector in (
        # "@domain" only: the local part before the "@" is found by ``_email_spans``.
        Detector(
            "email",
            re.compile(rf"@{_LABEL}(?:\.{_LABEL}){{0,8}}\.[A-Za-z]{{2,63}}"),
            _always,
            re.compile("@"),
        ),
        Detector("card", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _card, _DIGIT),
        Detector(
            "national_id",
            # US SSN (123-45-6789) or UK National Insurance number (QQ123456C)
            re.compile(r"(?<![\w-])(?:\d{3}-\d{2}-\d{4}|[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D])(?![\w-])"),
            _national_id,
            _DIGIT,
        ),
        Detector(
            "ip",
            re.compile(
                r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"
                r"|(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
            ),
            _ip,
            re.compile(r"[\d:]"),
        ),
        Detector("phone", re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{7,20}\d(?!\w)"), _phone, _DIGIT),
    )
}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: PiiKind
    start: int
    end: int


# Longer than any detector's longest match (an email domain: 1 + 9 labels of 64 + a 63-letter TLD).
LONGEST_MATCH = 1_024


def _spans(detector: Detector, text: str) -> Iterator[tuple[int, int]]:
    matches = finditer_windows(detector.pattern, text, LONGEST_MATCH)
    if detector.kind != "email":
        yield from (match.span() for match in matches)
        return
    floor = 0  # a local part never reaches back into the previous email
    for match in matches:
        at = match.start()
        local = _LOCAL_PART_REVERSED.match(text[max(floor, at - LOCAL_PART_MAX) : at][::-1])
        if local is not None:
            floor = match.end()
            yield at - local.end(), match.end()


def _overlaps(starts: list[int], taken: list[Finding], start: int, end: int) -> bool:
    """Whether [start, end) overlaps a finding in ``taken`` (sorted, non-overlapping; ``starts``
    their starts): only the last one starting before ``end`` can."""
    index = bisect.bisect_left(starts, end) - 1
    return index >= 0 and taken[index].end > start


def find_pii(text: str, kinds: tuple[PiiKind, ...] = KINDS) -> list[Finding]:
    """Non-overlapping findings in text order; on overlap the earlier kind in ``KINDS`` wins."""
    taken: list[Finding] = []
    for kind in KINDS:
        if kind not in kinds:
            continue
        detector = DETECTORS[kind]
        if detector.needs.search(text) is None:
            continue
        starts = [finding.start for finding in taken]
        found = [
            Finding(kind, start, end)
            for start, end in _spans(detector, text)
            if not _overlaps(starts, taken, start, end) and detector.valid(text[start:end])
        ]
        # One kind's matches never overlap each other: merge the two sorted lists.
        taken = sorted(taken + found, key=lambda finding: finding.start) if found else taken
    return taken


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
    max_scan_chars: int = Field(
        default=DEFAULT_MAX_SCAN_CHARS,
        ge=1,
        description="Longest text (all of a call's texts together) checked; longer: see docs/plugins.md.",
    )


class PiiPlugin(Plugin[PiiSettings]):
    name = "pii"
    version = "1.0.0"
    priority = 10  # first: later guardrails (and moderation endpoints) should not see the PII either
    settings_model = PiiSettings
    waits_only_in_run_cpu = True

    def __init__(self, settings: PiiSettings) -> None:
        super().__init__(settings)
        self._kinds = tuple(settings.entities)

    async def pre_call(self, call: GovernedCall) -> None:
        call.guardrails.append(self.name)
        found = check_scan_size(texts(call.body), self.settings.max_scan_chars)
        chars = sum(map(len, found))
        if self.settings.mode == "block":
            kinds = await self.run_cpu(lambda: self._kinds_in(found), chars)
            if kinds:
                raise GuardrailBlocked(
                    self.settings.block_status,
                    "pii_detected",
                    f"the request contains personal data ({', '.join(sorted(kinds))})",
                )
            return
        # Masked off the loop, written back on it: a scan that timed out never touches the body.
        # A text that was not scanned raises KeyError (a plugin failure) rather than pass unmasked.
        masked = await self.run_cpu(lambda: {text: self._redact(text) for text in found}, chars)
        rewrite_texts(call.body, masked.__getitem__)

    def _kinds_in(self, found: list[str]) -> set[PiiKind]:
        return {finding.kind for text in found for finding in find_pii(text, self._kinds)}

    def _redact(self, text: str) -> str:
        findings = find_pii(text, self._kinds)
        return mask(text, findings) if findings else text
