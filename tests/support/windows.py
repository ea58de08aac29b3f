"""Quota windows are clock-aligned (an hour window is a clock hour), so a test that counts calls in
one must not straddle the top of the hour: the count would start again halfway through."""

from __future__ import annotations

import time

HOUR_SECONDS = 3600


def wait_clear_of_hour_rollover(margin_seconds: float) -> None:
    """Return at once unless the hour ends within ``margin_seconds``; then wait until it has."""
    left = HOUR_SECONDS - time.time() % HOUR_SECONDS
    if left < margin_seconds:
        time.sleep(left + 0.5)
