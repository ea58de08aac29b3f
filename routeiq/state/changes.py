"""Live changes: the one way to change something on every worker and replica while they serve.

Each live-changeable thing is a *subject* (``routing.strategies``, ``policy``, ``keys``,
``breaker.<deployment>``, ``routing.router.<algo>``) holding one JSON value with a version number.
``publish`` stores the next version in the shared state (the version and the value change together,
atomically), applies it in this process and sends a notice. Every other process applies it when the
notice arrives. Notices can be lost (pub/sub is fire-and-forget, connections drop), so each process
also compares every subject's version with what it applied, in one round trip, every
``resync_seconds`` and as soon as its notice connection is back after a drop.

A config apply rebuilds the runtime around the same ``LiveChanges``: between ``begin_rebuild`` and
``commit_rebuild`` the new runtime's parts register their watches aside; at the commit they take
over the subjects (keeping the versions applied, and handed the current value), subjects nobody
watches any more are dropped, and new ones catch up. Subjects watched with ``lasting=True`` (the
config itself) are not the runtime's and survive every rebuild.

A process knows itself by an instance id unique across replicas (in containers every server is
pid 1 and its workers get the same small pids, so a pid says nothing). Each process reports what it
applied, and what it could not apply and why, under that id; ``GET /admin/changes`` lists every
live instance, so operators and tests wait for version N instead of sleeping.

A notice only says "look": the value is read from the store, so two changes racing from two
processes end with every process on the one the store kept (versions are given out atomically, and
a process never numbers a change below a version it applied). A Redis that lost its data (restarted
without persistence) is healed from the processes: each puts back the version it applied unless the
store holds a newer one, so the newest survives and the others follow it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routeiq.periodic import every, stop
from routeiq.state.base import StateStore, StateUnavailable

logger = logging.getLogger("routeiq.changes")

CHANNEL = "changes"
RECORDS = "changes"  # the versioned map: subject -> (version, value)
INSTANCES = "changes:instances"  # the record map: instance id -> its report
RESYNC_SECONDS = 2.0
STALE_AFTER_RESYNCS = 3  # an instance silent for this many resyncs has stopped (or lost Redis)


def new_instance_id() -> str:
    """Unique across replicas and restarts: host name and pid for people, random bits for uniqueness."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Change:
    """A version of a subject, as handed to the subject's applier."""

    subject: str
    version: int
    value: dict[str, Any] | None  # None: the shared state holds nothing: go back to the configured value
    previous: int  # the version this process had applied before (0: none)

    @property
    def follows_previous(self) -> bool:
        """False when versions were skipped here (notices missed): appliers of deltas start over."""
        return self.version == self.previous + 1


class ChangeRefused(Exception):
    """An applier cannot use a change in this process; the reason is reported for this instance."""


Applier = Callable[[Change], Awaitable[None] | None]


@dataclass(slots=True)
class _Subject:
    apply: Applier
    catch_up: bool  # False: versions stored before this process started count as applied
    lock: asyncio.Lock
    applied: int = 0
    value: dict[str, Any] | None = None  # the shared value applied (what heals a store that lost it)
    failure: str | None = None
    local_only: bool = False  # changed here alone while the shared state was away
    lasting: bool = False  # not a runtime part's: kept through every rebuild


class LiveChanges:
    """This process's end of the change mechanism: subjects it watches and what it applied of each."""

    def __init__(
        self,
        store: StateStore,
        instance_id: str,
        resync_seconds: float = RESYNC_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.instance_id = instance_id
        self._store = store
        self._resync_seconds = resync_seconds
        self._clock = clock
        self._subjects: dict[str, _Subject] = {}
        self._first_sync_done = False
        self._task: asyncio.Task[None] | None = None
        self._staged: dict[str, _Subject] | None = None  # a rebuild's watches, until committed

    def watch(self, subject: str, apply: Applier, *, catch_up: bool = True, lasting: bool = False) -> None:
        """Call ``apply`` with every new version of ``subject`` (before ``start``).

        ``catch_up=False`` is for subjects whose startup state is already newer than anything stored
        (a file read at startup, an empty cache): what the store holds at the first sync counts as
        applied, and only later versions are applied. ``lasting`` subjects outlive rebuilds."""
        if self._staged is not None and not lasting:
            if subject in self._staged:
                raise ValueError(f"subject {subject!r} is already watched")
            self._staged[subject] = _Subject(apply, catch_up, asyncio.Lock())
            return
        if subject in self._subjects:
            raise ValueError(f"subject {subject!r} is already watched")
        self._subjects[subject] = _Subject(apply, catch_up, asyncio.Lock(), lasting=lasting)

    def begin_rebuild(self) -> None:
        """From now until ``commit_rebuild`` (or ``abort_rebuild``), ``watch`` registers a new
        runtime's subjects aside; the running runtime's keep being applied meanwhile."""
        if self._staged is not None:
            raise RuntimeError("a rebuild is already under way")
        self._staged = {}

    def abort_rebuild(self) -> None:
        """The new runtime was not built: forget what it registered."""
        self._staged = None

    async def commit_rebuild(self) -> None:
        """The new runtime's watches replace the old runtime's.

        A subject watched before keeps its applied version; a catch-up subject's new applier is
        handed the value applied so far (the new part starts from the configured value, so it must
        learn what the cluster changed since). Subjects nobody watches now are dropped; new ones
        catch up with the store (a non-catch-up one counts what is stored as applied)."""
        staged, self._staged = self._staged or {}, None
        try:
            stored = await self._store.versions(RECORDS)
        except StateUnavailable:
            stored = {}
        fresh = []
        for subject, entry in staged.items():
            previous = self._subjects.get(subject)
            if previous is None:
                if not entry.catch_up:
                    entry.applied = stored.get(subject, 0)
                self._subjects[subject] = entry
                fresh.append(subject)
                continue
            async with previous.lock:  # no notice is applied to the old part while handing over
                entry.lock = previous.lock
                entry.applied, entry.value = previous.applied, previous.value
                entry.failure, entry.local_only = previous.failure, previous.local_only
                self._subjects[subject] = entry
                if entry.catch_up and entry.value is not None:
                    await self._apply(entry, Change(subject, entry.applied, entry.value, 0))
        for subject in [name for name, entry in self._subjects.items() if name not in staged]:
            if not self._subjects[subject].lasting:
                del self._subjects[subject]
        # Only the new subjects: this runs inside the config subject's applier, whose lock is held.
        with contextlib.suppress(StateUnavailable):  # the periodic resync catches up when Redis is back
            for subject in fresh:
                if stored.get(subject, 0) != self._subjects[subject].applied:
                    await self._sync(subject)

    def applied(self) -> dict[str, int]:
        return {subject: entry.applied for subject, entry in self._subjects.items()}

    async def start(self) -> None:
        self._store.subscribe(CHANNEL, self._on_notice)
        with contextlib.suppress(StateUnavailable):  # the periodic resync catches up when Redis is back
            await self.resync()
        self._task = every(self._resync_seconds, self.resync, "live-change resync")

    async def close(self) -> None:
        if self._task is not None:
            await stop([self._task])
            self._task = None
        with contextlib.suppress(StateUnavailable):
            await self._store.delete_entries(INSTANCES, [self.instance_id])

    async def publish(
        self, subject: str, value: Mapping[str, Any], *, local_if_unavailable: bool = False
    ) -> int | None:
        """Make ``value`` the next version of ``subject`` everywhere; returns that version.

        With the shared state away this raises ``StateUnavailable`` and nothing changes anywhere,
        unless ``local_if_unavailable``: then the change applies to this process alone (None is
        returned) and is replaced by the shared value once the store answers again."""
        entry = self._subjects[subject]
        try:
            version = await self._store.put_version(RECORDS, subject, value, floor=entry.applied)
        except StateUnavailable:
            if not local_if_unavailable:
                raise
            async with entry.lock:
                await self._apply(entry, Change(subject, entry.applied, dict(value), entry.applied))
                entry.local_only = True
            logger.warning("shared state unavailable: change to %s applied in this process only", subject)
            return None
        await self._sync(subject)
        with contextlib.suppress(StateUnavailable):  # the others find it at their next resync
            await self._store.publish(CHANNEL, {"subject": subject, "version": version})
            await self._report()
        return version

    async def resync(self) -> None:
        """Apply every subject whose stored version differs from this process's, then report."""
        stored = await self._store.versions(RECORDS)
        first = not self._first_sync_done
        self._first_sync_done = True
        for subject, entry in list(self._subjects.items()):  # (a rebuild may change them meanwhile)
            version = stored.get(subject)
            if first and not entry.catch_up:
                entry.applied = version or 0
            elif entry.local_only or version != entry.applied:
                await self._sync(subject)
        await self._report()

    async def cluster(self) -> dict[str, Any]:
        """Every subject's stored version, and each live instance's report (stale ones dropped)."""
        versions = await self._store.versions(RECORDS)
        reports = await self._store.entries(INSTANCES)
        now = self._clock()
        horizon = STALE_AFTER_RESYNCS * self._resync_seconds
        instances = {}
        stale = []
        for instance, report in reports.items():
            age = now - float(report.pop("seen", 0))
            if age > horizon:
                stale.append(instance)
                continue
            instances[instance] = {**report, "seen_seconds_ago": round(max(age, 0.0), 3)}
        with contextlib.suppress(StateUnavailable):
            await self._store.delete_entries(INSTANCES, stale)
        return {"instance": self.instance_id, "subjects": versions, "instances": instances}

    # --- internals ---

    async def _on_notice(self, message: dict[str, Any]) -> None:
        entry = self._subjects.get(str(message.get("subject")))
        if entry is None or message.get("version") == entry.applied:
            return  # not ours to watch, or already applied (our own notice, say)
        with contextlib.suppress(StateUnavailable):  # missed for now: the periodic resync retries
            await self._sync(str(message["subject"]))
            await self._report()

    async def _sync(self, subject: str) -> None:
        """Apply the subject's stored version if it is newer than the one applied here; put ours
        back if the store holds an older one or none (it lost its data)."""
        entry = self._subjects.get(subject)
        if entry is None:  # dropped by a rebuild
            return
        async with entry.lock:
            entry = self._subjects.get(subject, entry)  # a rebuild may have handed it over meanwhile
            stored = await self._store.get_version(RECORDS, subject)
            version, value = stored if stored is not None else (0, None)
            if version > entry.applied or (entry.local_only and stored is not None):
                await self._apply(entry, Change(subject, version, value, entry.applied))
                entry.value = value
            elif entry.local_only:  # nothing shared to return to: the configured value holds
                await self._apply(entry, Change(subject, 0, None, entry.applied))
                entry.value = None
            elif version < entry.applied and entry.value is not None:
                await self._restore(subject, entry)
            entry.local_only = False

    async def _restore(self, subject: str, entry: _Subject) -> None:
        """Unless another process already put back a newer version (applied here at the next sync)."""
        assert entry.value is not None
        if await self._store.restore_version(RECORDS, subject, entry.applied, entry.value):
            logger.warning("shared state had lost %s; put back version %d", subject, entry.applied)

    async def _apply(self, entry: _Subject, change: Change) -> None:
        """Run the applier. Whether it worked or not, the version counts as seen, so a change this
        process cannot use is reported once instead of retried forever."""
        try:
            outcome = entry.apply(change)
            if inspect.isawaitable(outcome):
                await outcome
        except ChangeRefused as refused:
            entry.failure = str(refused)
            logger.error("change %s v%d refused here: %s", change.subject, change.version, refused)
        except Exception as error:
            entry.failure = f"{type(error).__name__}: {error}"
            logger.exception("change %s v%d failed here", change.subject, change.version)
        else:
            entry.failure = None
        entry.applied = change.version

    async def _report(self) -> None:
        report = {
            "applied": self.applied(),
            "failed": {subject: e.failure for subject, e in self._subjects.items() if e.failure},
            "local_only": sorted(subject for subject, e in self._subjects.items() if e.local_only),
            "seen": self._clock(),
        }
        await self._store.put_entry(INSTANCES, self.instance_id, report)
