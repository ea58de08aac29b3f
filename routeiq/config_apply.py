"""Config apply: change the whole configuration on every worker and replica while they serve.

A config document (the YAML file's shape, as text) goes out through the live-change mechanism as
the subject ``config``. Every process, on a new version, builds settings from it with the startup
precedence (the document in the file's place, under the same ``ROUTEIQ_*`` environment), builds a
new ``Runtime`` on the same ``Foundation`` (state and database connections, HTTP pool, metrics),
hands the live subjects over to the new parts, swaps it into the ``RuntimeHandle``, and closes the
old runtime once no request is in flight (or after ``drain_timeout_seconds``): requests already
running finish on the runtime they started on.

The process that takes ``PUT /admin/config`` checks the document first (syntax, settings, the files,
plugins and trained routers it names, LiteLLM's view of the model_list, settings that cannot change
live): a document with any problem is refused whole and nothing changes anywhere. Then it keeps
the document in the config history (the durable store) and announces it. At startup the newest
applied document is used instead of the file as long as the file is the one it was applied over
(``docs/config-apply.md``).

Secrets: ``GET`` shows every secret-like value as ``***`` (``os.environ/NAME`` references are no
secrets and stay visible); a ``***`` submitted back keeps the current value at that place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from routeiq.config import DocumentInvalid, settings_from_document
from routeiq.config_document import (
    deeper_problems,
    file_text,
    parse_document,
    problem_dicts,
    restart_problems,
    restore_secrets,
    sha256,
)
from routeiq.periodic import every, stop
from routeiq.settings import Settings
from routeiq.state.base import StateUnavailable
from routeiq.state.changes import Change, ChangeRefused
from routeiq.store.config_history import ConfigHistory, ConfigVersion
from routeiq.store.database import StoreUnavailable
from routeiq.store.records import AuditRecord

if TYPE_CHECKING:  # typing only: the runtime module imports LiteLLM
    from routeiq.observability.tracing import Tracing
    from routeiq.resilience.traffic import TrafficGate
    from routeiq.runtime import Foundation, Runtime
    from routeiq.runtime_handle import RuntimeHandle

logger = logging.getLogger("routeiq.config")

SUBJECT = "config"
FILE_ACTOR = "system:config-file"  # who applied a hot-reloaded file, in the history and the audit log
FILE_CHECK_SECONDS = 2.0
FILE_CLAIM_SECONDS = 3600.0  # one process announces a file version; the others apply it
IDLE_POLL_SECONDS = 0.1  # how often a swapped-out runtime looks for the moment nothing is in flight

# --- the applier -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppliedConfig:
    """The document this process serves: ``version`` is its config history id (0: the file it was
    started with, never applied), ``source`` ``file`` or ``applied``."""

    version: int
    source: str
    document: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Applied:
    version: int  # the config history id
    change_version: int | None  # the ``config`` subject's version in GET /admin/changes


class ApplyFailed(Exception):
    """The document passed every check but could not be built here (its reason); announced anyway."""


class ConfigApplier:
    """This process's end of config apply: the document it serves, the swap, the file watch."""

    def __init__(
        self,
        handle: RuntimeHandle,
        foundation: Foundation,
        gate: TrafficGate,
        tracing: Tracing | None,
        file_path: Path | None,
        current: AppliedConfig,
    ) -> None:
        self._handle = handle
        self._foundation = foundation
        self._gate = gate
        self._tracing = tracing
        self._file_path = file_path
        self._base_dir = file_path.resolve().parent if file_path is not None else Path.cwd()
        self._file_sha = sha256(file_text(file_path))
        self._history = ConfigHistory(foundation.database)
        self._changes = foundation.state.changes
        self._lock = asyncio.Lock()  # one PUT at a time in this process
        self._retiring: set[asyncio.Task[None]] = set()
        self._watch_task: asyncio.Task[None] | None = None
        self._failure: tuple[str, str] | None = None  # (sha256, reason) of a document not built here
        self.current = current
        # Until ``start``: the version the shared state holds is judged by the startup rule (see
        # ``_on_change``), so a PUT made while this process started is not missed.
        self._starting = True
        self._changes.watch(SUBJECT, self._on_change, lasting=True)

    @property
    def hot_reload(self) -> bool:
        return self._handle.get().settings.config_hot_reload

    def start(self) -> None:
        """Once live changes are followed (their first sync done)."""
        self._starting = False
        if self._file_path is not None:
            self._watch_task = every(FILE_CHECK_SECONDS, self.check_file, "config file check")

    async def close(self) -> None:
        """At shutdown: stop watching, and close every swapped-out runtime now."""
        if self._watch_task is not None:
            await stop([self._watch_task])
            self._watch_task = None
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)

    # --- checking ---

    def settings_of(self, text: str) -> tuple[str, Settings]:
        """The document with its ``***`` restored and its settings; ``DocumentInvalid`` otherwise.
        Without the deeper checks (``check``)."""
        data = parse_document(text)
        restored = restore_secrets(data, parse_document(self.current.document))
        document = text if restored == data else yaml.safe_dump(restored, sort_keys=False, allow_unicode=True)
        settings = settings_from_document(document, self._base_dir)
        problems = restart_problems(self._handle.get().settings, settings)
        if problems:
            raise DocumentInvalid(problems)
        return document, settings

    async def check(self, text: str) -> tuple[str, Settings]:
        """Every check ``PUT`` makes before anything changes; ``DocumentInvalid`` with all problems."""
        document, settings = self.settings_of(text)
        problems = await asyncio.to_thread(deeper_problems, settings, self._file_path)
        if problems:
            raise DocumentInvalid(problems)
        return document, settings

    # --- applying ---

    async def apply(self, text: str, actor: str, source: str = "api") -> Applied:
        """Check ``text``, keep it in the history, announce it (applied here at once). Raises
        ``DocumentInvalid`` (nothing changed anywhere), ``StateUnavailable`` (not announced: the
        shared state is away; nothing changed) or ``ApplyFailed`` (announced, not built here)."""
        async with self._lock:
            document, settings = await self.check(text)
            before = self._handle.get().settings
            digest = sha256(document)
            version = ConfigVersion(0, time.time(), actor, source, document, digest, self._file_sha)
            version_id = await self._history.add(version)
            value = {
                "id": version_id,
                "sha256": digest,
                "document": document,
                "source": source,
                "file_sha256": self._file_sha,
            }
            try:
                change_version = await self._changes.publish(SUBJECT, value)
            except BaseException:
                with contextlib.suppress(StoreUnavailable):
                    await self._history.remove(version_id)
                raise
            if self.current.sha256 != digest:
                reason = self._failure[1] if self._failure and self._failure[0] == digest else "superseded"
                raise ApplyFailed(reason)
            await self._follow_configured_strategies(before, settings)
            return Applied(version_id, change_version)

    async def _follow_configured_strategies(self, before: Settings, settings: Settings) -> None:
        """A strategy set through ``PUT /admin/strategy`` outlives a config apply (the new runtime is
        handed it), unless the document changes the configured strategies: then those are what the
        operator asked for, and they go out as the next strategy change."""
        after = settings.router_settings
        if (before.router_settings.routing_strategy, before.group_strategy_names()) == (
            after.routing_strategy,
            settings.group_strategy_names(),  # a cascade group's strategy is llmrouter-cascade
        ):
            return
        from routeiq.routing.active import SUBJECT as STRATEGIES

        wanted = {"default": after.routing_strategy, "groups": settings.group_strategy_names()}
        try:
            await self._changes.publish(STRATEGIES, wanted)
        except StateUnavailable:
            logger.warning("configured routing strategies not announced: the shared state is away")

    async def _on_change(self, change: Change) -> None:
        value = change.value
        if value is None:  # the store holds no config (it lost its data): keep serving this one
            return
        digest, document = str(value.get("sha256")), str(value.get("document", ""))
        version_id = int(value.get("id") or 0)
        if self._starting and not self._newer_over_this_file(value, version_id):
            return  # what the cluster serves was applied over another file, or is what started here
        if digest == self.current.sha256:
            self.current = replace(self.current, version=version_id, source="applied")
            return
        try:
            settings = settings_from_document(document, self._base_dir)
            problems = restart_problems(self._handle.get().settings, settings)
            if problems:
                raise DocumentInvalid(problems)
            await self._swap(settings)
        except (DocumentInvalid, ChangeRefused) as error:
            self._failure = (digest, str(error))
            raise ChangeRefused(f"config version {version_id} refused here: {error}") from None
        self.current = AppliedConfig(version_id, "applied", document, digest)
        self._failure = None
        logger.info("config version %d applied (sha256 %s)", version_id, digest[:12])

    def _newer_over_this_file(self, value: dict[str, Any], version_id: int) -> bool:
        """The startup rule for the version the shared state holds at startup: take it only if it
        was applied over this very file and is newer than the one chosen from the history."""
        return value.get("file_sha256") == self._file_sha and version_id > self.current.version

    async def _swap(self, settings: Settings) -> None:
        from routeiq.runtime import build_runtime  # imports LiteLLM: loaded by now anyway

        self._changes.begin_rebuild()
        try:
            runtime = await build_runtime(settings, self._gate, self._tracing, self._foundation)
        except Exception as error:
            self._changes.abort_rebuild()
            logger.exception("the new config does not build here; the running one stays")
            raise ChangeRefused(f"does not build here: {type(error).__name__}: {error}") from None
        except BaseException:
            self._changes.abort_rebuild()
            raise
        old = self._handle.get()
        await self._changes.commit_rebuild()
        self._handle.attach(runtime)
        task = asyncio.create_task(self._retire(old, settings.drain_timeout_seconds), name="retire runtime")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, old: Runtime, grace_seconds: float) -> None:
        """Close ``old`` once no request is in flight (those running may still be using it), or
        after the grace a shutdown gives in-flight requests; at once when the app shuts down."""
        try:
            deadline = time.monotonic() + grace_seconds
            with contextlib.suppress(asyncio.CancelledError):
                while self._gate.in_flight > 0 and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a gauge
                    await asyncio.sleep(IDLE_POLL_SECONDS)
        finally:
            try:
                await old.close()
            except Exception:
                logger.exception("closing a swapped-out runtime failed")

    # --- the file ---

    async def check_file(self) -> None:
        """With ``config_hot_reload`` on: a changed file is applied like a PUT (if valid)."""
        if self._file_path is None or not self.hot_reload:
            return
        try:
            text = await asyncio.to_thread(file_text, self._file_path)
        except OSError as error:
            logger.warning("config file %s unreadable: %s", self._file_path, error.strerror)
            return
        digest = sha256(text)
        if digest == self._file_sha:
            return
        self._file_sha = digest
        if digest == self.current.sha256:
            return
        # Every worker (and replica) watches the file: the first to claim this version announces it.
        claim = f"config:file:{self.current.sha256[:16]}:{digest}"
        try:
            claimed = await self._foundation.state.for_feature("routing").set_record_if_absent(
                claim, {"by": self._changes.instance_id}, ttl_seconds=FILE_CLAIM_SECONDS
            )
        except StateUnavailable:
            claimed = True  # alone for now: announcing fails the same way, and says so
        if not claimed:
            return
        details: dict[str, Any] = {"file": str(self._file_path)}
        outcome = "failure"
        try:
            applied = await self.apply(text, FILE_ACTOR, source="file")
        except DocumentInvalid as error:
            details["errors"] = problem_dicts(error.problems)[:20]
            logger.error("config file change refused; the running config stays:\n%s", error)
        except Exception as error:
            details["error"] = f"{type(error).__name__}: {error}"
            logger.error("config file change not applied: %s", details["error"])
        else:
            details["version"], outcome = applied.version, "success"
            logger.info("config file change applied as version %d", applied.version)
        await self._audit(outcome, details)

    async def _audit(self, outcome: str, details: dict[str, Any]) -> None:
        """A file reload has no request to hang an audit record on: written here, same action."""
        record = AuditRecord(FILE_ACTOR, "config.apply", outcome, time.time(), "config", None, details)
        try:
            await self._handle.get().audit_log.write(record)
        except StoreUnavailable as error:
            logger.error("audit record for a config file reload not written: %s", error)


async def startup_config(
    file_settings: Settings, file_path: Path | None, foundation: Foundation
) -> tuple[Settings, AppliedConfig]:
    """The settings to start with: the newest applied document if it was applied over the file as
    it is now (same sha256), else the file. A document that no longer loads (say, an environment
    variable it names is gone) is skipped with an error in the log."""
    text = file_text(file_path)
    from_file = AppliedConfig(0, "file", text, sha256(text))
    try:
        newest = await ConfigHistory(foundation.database).newest()
    except StoreUnavailable as error:
        logger.warning("config history unreadable (%s): serving the config file", error)
        return file_settings, from_file
    if newest is None:
        return file_settings, from_file
    if newest.file_sha256 != from_file.sha256:
        logger.info("config file changed since config version %d was applied: serving the file", newest.id)
        return file_settings, from_file
    applied = AppliedConfig(newest.id, "applied", newest.document, newest.sha256)
    if newest.sha256 == from_file.sha256:
        return file_settings, applied
    base_dir = file_path.resolve().parent if file_path is not None else Path.cwd()  # noqa: ASYNC240 - once, at startup
    try:
        settings = settings_from_document(newest.document, base_dir)
        problems = restart_problems(file_settings, settings)
        if problems:
            raise DocumentInvalid(problems)
    except DocumentInvalid as error:
        logger.error("config version %d does not load any more; serving the file:\n%s", newest.id, error)
        return file_settings, from_file
    logger.info(
        "serving config version %d (applied %s by %s)", newest.id, time.ctime(newest.at), newest.actor
    )
    return settings, applied
