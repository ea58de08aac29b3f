"""Quota windows are clock-aligned (an hour window is a clock hour), so a test that counts calls in
one must not straddle the top of the hour: the count would start again halfway through."""

from __future__ import annotations

import time

MINUTE_SECONDS = 60
HOUR_SECONDS = 3600


def wait_clear_of_rollover(window_seconds: float, margin_seconds: float) -> None:
    """Return at once unless the clock window ends within ``margin_seconds``; then wait until it has."""
    left = window_seconds - time.time() % window_seconds
    if left < margin_seconds:
        time.sleep(left + 0.5)


def wait_clear_of_hour_rollover(margin_seconds: float) -> None:
    wait_clear_of_rollover(HOUR_SECONDS, margin_seconds)
