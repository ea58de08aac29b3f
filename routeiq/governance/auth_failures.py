"""Failed admin authentication, in the audit log, without letting an attacker flood it.

Someone guessing admin keys should show up in the audit trail, but every guess cannot be a row: a
loop of bad requests would fill the table. So a source address gets at most one ``admin.auth_failed``
record per ``interval_seconds`` (the next one says how many were left out), and no more than
``max_per_interval`` records are written per interval in all, however many addresses take part.
The counts are this worker's; with N workers the bounds are N times as high.

A record names the source address and a short fingerprint of the presented key, never the key.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from routeiq.store.audit import AuditRepository
from routeiq.store.records import AuditRecord

logger = logging.getLogger("routeiq.auth")

ACTION = "admin.auth_failed"
ACTOR = "unauthenticated"


def key_fingerprint(key: str) -> str:
    """Enough to tell repeated attempts with the same key apart; never enough to use it."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(slots=True)
class _Source:
    recorded_at: float
    suppressed: int = 0


class FailedAuthRecorder:
    def __init__(
        self,
        interval_seconds: float = 60.0,
        max_per_interval: int = 100,
        max_sources: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._interval = interval_seconds
        self._max_per_interval = max_per_interval
        self._max_sources = max_sources
        self._clock = clock
        self._wall_clock = wall_clock
        self._sources: dict[str, _Source] = {}
        self._window_started = clock()
        self._written_in_window = 0

    def admit(self, source: str) -> int | None:
        """None if this failure is left out; else how many from ``source`` were left out before it."""
        now = self._clock()
        if now - self._window_started >= self._interval:
            self._window_started, self._written_in_window = now, 0
            # Forget sources whose interval is over (the table stays as small as the current wave),
            # except those with failures left out, which their next record reports for one more.
            self._sources = {
                name: seen
                for name, seen in self._sources.items()
                if now - seen.recorded_at < self._interval * (2 if seen.suppressed else 1)
            }
        seen = self._sources.get(source)
        if seen is not None and now - seen.recorded_at < self._interval:
            seen.suppressed += 1
            return None
        if self._written_in_window >= self._max_per_interval or (
            seen is None and len(self._sources) >= self._max_sources
        ):
            return None
        self._written_in_window += 1
        self._sources[source] = _Source(now)
        return seen.suppressed if seen is not None else 0

    async def failed(
        self,
        repository: AuditRepository,
        *,
        source: str,
        key: str | None,
        route: str,
        method: str,
        request_id: str | None,
    ) -> None:
        """Record one failed attempt if the bounds allow it. Never raises: the caller is answering 401
        either way, and a store that is down must not turn that into a 500."""
        suppressed = self.admit(source)
        if suppressed is None:
            return
        details: dict[str, Any] = {
            "source_ip": source,
            "method": method,
            "reason": "missing_key" if key is None else "invalid_key",
            "key_fingerprint": key_fingerprint(key) if key is not None else None,
            "suppressed_since_last": suppressed,
        }
        record = AuditRecord(
            actor=ACTOR,
            action=ACTION,
            outcome="denied",
            at=self._wall_clock(),
            target=route[:512],
            request_id=request_id,
            details=details,
        )
        try:
            await repository.write(record)
        except Exception as error:
            logger.warning("failed admin authentication not audited: %s", type(error).__name__)
