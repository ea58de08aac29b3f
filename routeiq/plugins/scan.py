"""Regular-expression scans that let other threads run while they read megabytes.

Python's ``re`` engine holds the GIL for the whole of one search: a scan of a megabyte that finds
nothing is one uninterrupted stretch, so a guardrail scanning on a worker thread would still stall
the event loop (and liveness) for that long. Scanning in windows gives the interpreter a switch point
between windows. The result is exactly ``pattern.finditer(text)``'s for patterns whose matches are
never longer than ``longest_match`` (each window is searched with that much text after it, and
lookbehinds still see the text before it) and never empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

WINDOW_CHARS = 16_384  # a few milliseconds of scanning at most


def finditer_windows(
    pattern: re.Pattern[str], text: str, longest_match: int, window: int = WINDOW_CHARS
) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)``, one window at a time."""
    if len(text) <= window + longest_match:
        yield from pattern.finditer(text)
        return
    resume = 0  # where the previous window's last match ended: matches never overlap
    for start in range(0, len(text), window):
        stop = start + window
        for match in pattern.finditer(text, max(resume, start), min(len(text), stop + longest_match)):
            if match.start() >= stop:
                break  # the next window finds it, with all the text after it that it needs
            resume = match.end()
            yield match
