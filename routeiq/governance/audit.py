"""The audit trail of the control plane: who did what, to what, when, with what outcome.

An action's record is written *before* the action takes effect, so that with
``audit_failure_mode: closed`` an action that cannot be recorded is refused (503) instead of
happening unrecorded. If the action then fails, its record's outcome is changed to ``failure``.

A configuration applied through ``PUT /admin/config`` (or a hot-reloaded file) is recorded as
``config.apply`` (``routeiq.config_apply``); ``routeiq serve`` records a ``config.change`` naming the
settings that differ from the last start.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request

from routeiq.config import CONFIG_PATH_ENV
from routeiq.errors import AuditUnavailable, GatewayError
from routeiq.governance.call import current_call
from routeiq.settings import Settings
from routeiq.store.audit import AuditRepository
from routeiq.store.records import AuditRecord

logger = logging.getLogger("routeiq.audit")


@dataclass
class AuditEntry:
    """What the action adds to its record while it runs (``details``)."""

    record_id: int | None
    details: dict[str, Any] = field(default_factory=dict)


class AuditTrail:
    def __init__(
        self,
        repository: AuditRepository,
        fail_closed: bool,
        on_write_failure: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._fail_closed = fail_closed
        self._on_write_failure = on_write_failure
        self._clock = clock

    async def record(
        self,
        request: Request,
        action: str,
        target: str | None,
        outcome: str,
        details: dict[str, Any] | None = None,
    ) -> int | None:
        """Write one record now; ``AuditUnavailable`` if that fails and the trail is fail-closed."""
        call = current_call(request.scope)
        record = AuditRecord(
            actor=call.identity.actor if call is not None else "unknown",
            action=action,
            outcome=outcome,
            at=self._clock(),
            target=target,
            request_id=call.request_id if call is not None else None,
            details=details or {},
        )
        try:
            return await self._repository.write(record)
        except Exception as error:
            self._on_write_failure()
            logger.error("audit record for %s not written: %s", action, type(error).__name__)
            if self._fail_closed:
                raise AuditUnavailable(action) from None
            return None

    @asynccontextmanager
    async def action(
        self, request: Request, action: str, target: str | None = None, details: dict[str, Any] | None = None
    ) -> AsyncIterator[AuditEntry]:
        """Record ``action`` as done, run it, and mark the record ``failure`` if it raised."""
        entry = AuditEntry(None, dict(details or {}))
        entry.record_id = await self.record(request, action, target, "success", entry.details)
        try:
            yield entry
        except BaseException as error:
            outcome = "denied" if isinstance(error, GatewayError) and error.denial else "failure"
            if isinstance(error, GatewayError):
                entry.details["error"] = error.message
            await self._set_outcome(entry, outcome)
            raise
        else:
            if entry.details != (details or {}):
                await self._set_outcome(entry, "success")

    async def _set_outcome(self, entry: AuditEntry, outcome: str) -> None:
        """Rewrite the action's record with how it ended (and what it added to ``details``)."""
        if entry.record_id is None:
            return
        try:
            await self._repository.set_outcome(entry.record_id, outcome, entry.details)
        except Exception as error:
            self._on_write_failure()
            logger.error("audit record %s not updated: %s", entry.record_id, type(error).__name__)


def config_fingerprint(settings: Settings) -> dict[str, str]:
    """A short hash of each top-level setting, secrets masked: enough to say *what* changed
    without keeping the configuration (or any secret) in the audit log."""
    dumped = settings.model_dump(mode="json")
    return {
        name: hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
        for name, value in sorted(dumped.items())
    }


async def record_config_change(repository: AuditRepository, settings: Settings) -> AuditRecord | None:
    """At startup: a ``config.change`` record naming the settings that differ from the last start."""
    sections = config_fingerprint(settings)
    last, _ = await repository.query(action="config.change", limit=1)
    previous: dict[str, str] = last[0].details.get("sections", {}) if last else {}
    changed = sorted(
        name for name in sections.keys() | previous.keys() if sections.get(name) != previous.get(name)
    )
    if last and not changed:
        return None
    record = AuditRecord(
        actor="system:startup",
        action="config.change",
        outcome="success",
        at=time.time(),
        target=os.environ.get(CONFIG_PATH_ENV),
        details={"changed": changed if last else ["*"], "sections": sections},
    )
    record.id = await repository.write(record)
    return record
