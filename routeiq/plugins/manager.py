"""Find, validate, start and stop the configured plugins, and run their hooks with a timeout each.

Plugins come from ``settings.plugins`` by name: a built-in, or a third-party class registered under
the ``routeiq.plugins`` entry point group. A bad name or bad settings is a ``ConfigError`` naming
the entry, raised before anything serves (``routeiq serve`` and ``routeiq check-config`` alike).

Each hook runs under its plugin's ``timeout_ms``. A hook that fails or times out is skipped when the
plugin's ``failure_mode`` is ``continue`` (logged and counted) and refuses the request with 503
``plugin_failed`` when it is ``abort``. A ``GuardrailBlocked`` is not a failure: it is the answer.
A call whose text is longer than a guardrail's ``max_scan_chars`` (``ScanLimitExceeded``) is skipped
by that guardrail in ``continue`` mode and refused with 413 ``guardrail_scan_limit`` in ``abort``
mode (a retry cannot help, so not a 503).

The manager owns a small pool of worker threads for the plugins' CPU-heavy work (``run_cpu``): a
scan there leaves the event loop free, so the timeout above can fire while it runs.

A configured plugin can be disabled and enabled again while serving (``POST
/admin/plugins/{name}/disable``): each one is the live-change subject ``plugin.<name>``, so the
switch reaches every worker and replica; a disabled plugin is left out of every hook until enabled.
Its counters (runs, failures, timeouts, blocks, oversize) are kept per worker and added to the
shared state every second, so ``GET /admin/plugins`` shows the whole cluster's.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pydantic import ValidationError
from starlette.requests import HTTPConnection
from starlette.responses import Response

from routeiq.config import ConfigError
from routeiq.errors import GatewayError, GuardrailBlocked, GuardrailScanLimit, PluginFailed
from routeiq.governance.call import GovernedCall
from routeiq.observability.tracing import Tracing
from routeiq.periodic import every, stop
from routeiq.plugins.base import (
    GROUP,
    HOOKS,
    CallResult,
    Plugin,
    PluginHealth,
    PluginServices,
    ScanLimitExceeded,
    implements,
)
from routeiq.settings import PluginConfig
from routeiq.state.base import StateStore, StateUnavailable
from routeiq.state.changes import Change, LiveChanges
from routeiq.state.counters import SharedCounters

logger = logging.getLogger("routeiq.plugins")

# Imported only when configured, so a gateway without them pays nothing.
BUILTINS: dict[str, str] = {
    "pii": "routeiq.plugins.builtin.pii:PiiPlugin",
    "prompt_injection": "routeiq.plugins.builtin.injection:InjectionPlugin",
    "content_filter": "routeiq.plugins.builtin.content_filter:ContentFilterPlugin",
    "moderation": "routeiq.plugins.builtin.moderation:ModerationPlugin",
    "cost_tracker": "routeiq.plugins.builtin.cost:CostTracker",
}
HEALTH_TIMEOUT_SECONDS = 2.0
SUBJECT_PREFIX = "plugin."  # live-change subject of each configured plugin: plugin.<name>
COUNTERS_KEY = "plugins:counters"  # the shared hash of every worker's counters: <name>|<counter>
COUNTERS = ("runs", "failures", "timeouts", "blocks", "oversize")
COUNTERS_FLUSH_SECONDS = 1.0
# Threads for plugins' CPU work: scans are linear and capped, so a few suffice; more would only
# compete with the event loop for the GIL (and this machine class has 2 cores).
CPU_THREADS = 2

T = TypeVar("T")


@dataclass(eq=False)
class LoadedPlugin:
    """One configured plugin instance with its effective options and this worker's counters."""

    plugin: Plugin[Any]
    source: str  # "builtin" or the entry point's value
    priority: int
    timeout_seconds: float
    abort: bool
    runs: int = 0  # hooks run (stream events not counted)
    failures: int = 0
    timeouts: int = 0
    blocks: int = 0
    oversize: int = 0  # calls whose text was over the guardrail's max_scan_chars (not checked)
    name: str = ""  # as configured (one class may serve several entry point names); default: its own
    enabled: bool = True  # switched live (POST /admin/plugins/{name}/enable|disable)

    def __post_init__(self) -> None:
        self.name = self.name or type(self.plugin).name


def available_plugins() -> dict[str, str]:
    """Every plugin name that can be configured, and where it comes from."""
    found = {name: "builtin" for name in BUILTINS}
    for point in entry_points(group=GROUP):
        found.setdefault(point.name, point.value)
    return found


def find_plugin_class(name: str) -> tuple[type[Plugin[Any]], str]:
    """The class behind a configured name (built-ins win over an entry point of the same name)."""
    if name in BUILTINS:
        module, _, attribute = BUILTINS[name].partition(":")
        return getattr(importlib.import_module(module), attribute), "builtin"
    points = entry_points(group=GROUP, name=name)
    if not points:
        raise ConfigError(
            f"unknown plugin {name!r}; available: {sorted(available_plugins())} "
            f"(third-party plugins register under the {GROUP!r} entry point group)"
        )
    point = next(iter(points))
    try:
        loaded = point.load()
    except Exception as error:
        raise ConfigError(f"plugin {name!r}: cannot import {point.value}: {error}") from None
    if not (isinstance(loaded, type) and issubclass(loaded, Plugin)):
        raise ConfigError(f"plugin {name!r}: {point.value} is not a routeiq.plugins.base.Plugin subclass")
    return loaded, point.value


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        problems.append(f"settings.{where}: {item['msg']}" if where else f"settings: {item['msg']}")
    return "; ".join(problems)


def load_plugins(configs: list[PluginConfig]) -> list[LoadedPlugin]:
    """Instantiate the enabled plugins, validating each one's settings with its own model."""
    loaded: list[LoadedPlugin] = []
    seen: set[str] = set()
    for index, config in enumerate(configs):
        where = f"plugins[{index}] ({config.name})"
        if not config.enabled:
            continue
        if config.name in seen:
            raise ConfigError(f"{where}: plugin {config.name!r} is configured twice")
        seen.add(config.name)
        try:
            plugin_class, source = find_plugin_class(config.name)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        try:
            settings = plugin_class.settings_model.model_validate(config.settings)
        except ValidationError as error:
            raise ConfigError(f"{where}: {_describe(error)}") from None
        try:
            plugin = plugin_class(settings)
        except Exception as error:
            raise ConfigError(f"{where}: cannot be created: {error}") from None
        loaded.append(
            LoadedPlugin(
                plugin=plugin,
                source=source,
                priority=plugin_class.priority if config.priority is None else config.priority,
                timeout_seconds=config.timeout_ms / 1000,
                abort=config.failure_mode == "abort",
                name=config.name,
            )
        )
    return loaded


class PluginManager:
    """The plugins in priority order (lower first), and per hook only those that implement it."""

    def __init__(self, plugins: list[LoadedPlugin], tracing: Tracing | None = None) -> None:
        self.plugins = sorted(plugins, key=lambda loaded: loaded.priority)
        self._tracing = tracing if tracing is not None else Tracing.off()
        # Threads start only when a plugin first uses run_cpu.
        self.cpu_executor = ThreadPoolExecutor(CPU_THREADS, thread_name_prefix="routeiq-plugin-cpu")
        for loaded in self.plugins:
            loaded.plugin.cpu_executor = self.cpu_executor
            if loaded.plugin.waits_only_in_run_cpu:
                loaded.plugin.hook_timeout_seconds = loaded.timeout_seconds
        self._changes: LiveChanges | None = None
        self._counters_store: StateStore | None = None
        self._shared: SharedCounters | None = None  # takes the counts to the shared hash, once each
        self._handed: dict[str, int] = {}  # <name>|<counter> -> the part handed to ``_shared``
        self._flush_task: asyncio.Task[None] | None = None
        self._index()

    def _index(self) -> None:
        """The enabled plugins of each hook (again after a plugin is switched on or off)."""
        enabled = [p for p in self.plugins if p.enabled]
        by_hook = {hook: [p for p in enabled if implements(type(p.plugin), hook)] for hook in HOOKS}
        self.on_request = by_hook["on_request"]
        self.pre_call = by_hook["pre_call"]
        self.on_stream_chunk = by_hook["on_stream_chunk"]
        self.post_call = by_hook["post_call"]
        self.on_error = by_hook["on_error"]
        self.active = bool(enabled)
        # Whether responses need watching at all, and whether non-streamed bodies must be held back.
        self.observes_responses = bool(self.on_stream_chunk or self.post_call or self.on_error)
        self.reads_response_body = any(p.plugin.reads_response_body for p in self.post_call + self.on_error)

    @classmethod
    def from_configs(cls, configs: list[PluginConfig], tracing: Tracing | None = None) -> PluginManager:
        return cls(load_plugins(configs), tracing)

    # Switching plugins on and off -------------------------------------------------------------

    def follow(self, changes: LiveChanges) -> None:
        """Watch each configured plugin's subject (before the changes start)."""
        self._changes = changes
        for loaded in self.plugins:
            changes.watch(SUBJECT_PREFIX + loaded.name, self._switcher(loaded))

    def _switcher(self, loaded: LoadedPlugin) -> Callable[[Change], None]:
        def apply(change: Change) -> None:
            enabled = True if change.value is None else bool(change.value.get("enabled", True))
            if enabled != loaded.enabled:
                loaded.enabled = enabled
                self._index()
                logger.warning("plugin %s is now %s", loaded.name, "enabled" if enabled else "DISABLED")

        return apply

    def find(self, name: str) -> LoadedPlugin | None:
        return next((loaded for loaded in self.plugins if loaded.name == name), None)

    async def set_enabled(self, name: str, enabled: bool) -> int | None:
        """Switch a configured plugin on or off on every worker and replica; the change's version.
        ``KeyError`` for a name that is not configured; ``StateUnavailable`` (nothing changed
        anywhere) while the shared state is away: a guardrail is not switched on one worker alone."""
        if self.find(name) is None:
            raise KeyError(name)
        if self._changes is None:
            raise RuntimeError("the plugin manager does not follow live changes")
        return await self._changes.publish(SUBJECT_PREFIX + name, {"enabled": enabled})

    # Lifecycle -----------------------------------------------------------------------------

    async def start(self, services: PluginServices) -> None:
        """Start each plugin in order; should one fail, those already started are shut down again
        (``close`` is then not needed, and startup stops with the failure)."""
        self._counters_store = services.state
        self._shared = SharedCounters(services.state, COUNTERS_FLUSH_SECONDS, "plugin counters flush")
        for index, loaded in enumerate(self.plugins):
            try:
                await loaded.plugin.startup(services)
            except Exception as error:
                await self._shut_down(self.plugins[:index])
                raise RuntimeError(f"plugin {loaded.name!r} failed to start: {error}") from error
            logger.info(
                "plugin %s %s started (priority %d)", loaded.name, loaded.plugin.version, loaded.priority
            )
        if self.plugins:
            self._flush_task = every(COUNTERS_FLUSH_SECONDS, self.flush_counters, "plugin counters flush")

    async def close(self) -> None:
        if self._flush_task is not None:
            await stop([self._flush_task])
            with contextlib.suppress(Exception):
                await self.flush_counters()
        await self._shut_down(self.plugins)

    async def flush_counters(self) -> None:
        """Add what this worker counted since the last flush to the shared hash (kept for the next
        flush if the store is away)."""
        if self._shared is None:
            return
        current = self._local_counters()
        delta = {field: value - self._handed.get(field, 0) for field, value in current.items()}
        delta = {field: value for field, value in delta.items() if value}
        if delta:
            self._shared.add(COUNTERS_KEY, delta)
            self._handed = current
        await self._shared.flush()

    def _local_counters(self) -> dict[str, int]:
        return {
            f"{loaded.name}|{counter}": getattr(loaded, counter)
            for loaded in self.plugins
            for counter in COUNTERS
        }

    async def counters(self) -> tuple[str, dict[str, dict[str, int]]]:
        """Each plugin's counters: the cluster's (``cluster``) or, with no shared state to read, this
        worker's (``worker``)."""
        scope = "worker"
        fields = self._local_counters()
        if self._counters_store is not None and self._shared is not None:
            with contextlib.suppress(StateUnavailable):
                stored = await self._counters_store.hgetall(COUNTERS_KEY)
                # The shared hash, plus what this worker counted but the hash does not hold yet.
                waiting = self._shared.pending(COUNTERS_KEY)
                fields = {
                    field: int(stored.get(field, 0)) + waiting[field] + value - self._handed.get(field, 0)
                    for field, value in fields.items()
                }
                scope = "cluster"
        by_plugin: dict[str, dict[str, int]] = {}
        for field, value in fields.items():
            name, _, counter = field.rpartition("|")
            by_plugin.setdefault(name, {})[counter] = value
        return scope, by_plugin

    async def _shut_down(self, started: list[LoadedPlugin]) -> None:
        for loaded in reversed(started):
            try:
                await loaded.plugin.shutdown()
            except Exception:
                logger.warning("plugin %s failed to shut down cleanly", loaded.name, exc_info=True)
        # Queued scans are dropped; a running one (bounded by max_scan_chars) ends on its own.
        self.cpu_executor.shutdown(wait=False, cancel_futures=True)

    async def health(self) -> list[dict[str, Any]]:
        """Each plugin with its metadata, whether it is enabled, hooks, health and counters."""
        report = []
        scope, counters = await self.counters()
        for loaded in self.plugins:
            try:
                async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                    health = await loaded.plugin.health()
            except Exception as error:
                health = PluginHealth("down", f"health check failed: {type(error).__name__}")
            report.append(
                {
                    "name": loaded.name,
                    "version": loaded.plugin.version,
                    "source": loaded.source,
                    "priority": loaded.priority,
                    "enabled": loaded.enabled,
                    "timeout_ms": round(loaded.timeout_seconds * 1000),
                    "failure_mode": "abort" if loaded.abort else "continue",
                    "hooks": [hook for hook in HOOKS if implements(type(loaded.plugin), hook)],
                    "health": {"status": health.status, "detail": health.detail},
                    "counters": {"scope": scope, **counters[loaded.name]},
                }
            )
        return report

    # Hooks ---------------------------------------------------------------------------------

    async def run_on_request(self, call: GovernedCall, connection: HTTPConnection) -> Response | None:
        for loaded in self.on_request:
            response = await self._run(loaded, call, "on_request", loaded.plugin.on_request(call, connection))
            if isinstance(response, Response):
                return response
        return None

    async def run_pre_call(self, call: GovernedCall) -> None:
        for loaded in self.pre_call:
            await self._run(loaded, call, "pre_call", loaded.plugin.pre_call(call))

    async def run_stream_event(self, call: GovernedCall, event: bytes) -> bytes:
        for loaded in self.on_stream_chunk:
            changed = await self._run(
                loaded, call, "on_stream_chunk", loaded.plugin.on_stream_chunk(call, event)
            )
            if isinstance(changed, bytes):
                event = changed
            if not event:
                return b""
        return event

    async def run_post_call(self, call: GovernedCall, result: CallResult) -> None:
        """Every post_call hook runs (the cost tracker must count a refused answer too); the first
        refusal or abort is raised once they all ran."""
        refusal: GatewayError | None = None
        for loaded in self.post_call:
            try:
                await self._run(loaded, call, "post_call", loaded.plugin.post_call(call, result))
            except GatewayError as error:
                refusal = refusal or error
        if refusal is not None:
            raise refusal

    async def run_on_error(self, call: GovernedCall, result: CallResult) -> None:
        """Observers only: nothing they raise changes the error the client gets."""
        for loaded in self.on_error:
            try:
                await self._run(loaded, call, "on_error", loaded.plugin.on_error(call, result))
            except GatewayError:
                logger.warning("plugin %s refused in on_error; the original error stands", loaded.name)

    async def _run(self, loaded: LoadedPlugin, call: GovernedCall, hook: str, work: Awaitable[T]) -> T | None:
        """One hook, with a span of its own when traced (not per stream event: one per chunk would
        drown the trace); a refusal shows as the span's error."""
        if not self._tracing.enabled or hook == "on_stream_chunk":
            return await self._guarded(loaded, call, hook, work)
        attributes = {"routeiq.plugin.name": loaded.name, "routeiq.plugin.hook": hook}
        with self._tracing.span(f"routeiq.plugin {loaded.name} {hook}", attributes=attributes):
            return await self._guarded(loaded, call, hook, work)

    async def _guarded(
        self, loaded: LoadedPlugin, call: GovernedCall, hook: str, work: Awaitable[T]
    ) -> T | None:
        applied = len(call.guardrails)
        if hook != "on_stream_chunk":
            loaded.runs += 1
        try:
            if loaded.plugin.waits_only_in_run_cpu:  # its run_cpu applies the timeout (see Plugin)
                return await work
            async with asyncio.timeout(loaded.timeout_seconds):
                return await work
        except GuardrailBlocked as blocked:
            loaded.blocks += 1
            logger.info("guardrail %s refused request %s (%s)", loaded.name, call.request_id, blocked.code)
            raise
        except GatewayError:
            raise  # a plugin's own deliberate answer (say, an APIError 429 of its own)
        except ScanLimitExceeded as error:
            loaded.oversize += 1
            reason = f"did not check request {call.request_id}: {error}"
            del call.guardrails[applied:]
            if loaded.abort:
                logger.warning("plugin %s %s: refusing it", loaded.name, reason)
                # Before the call it is the request that is too long (413); after, the answer (502).
                before = hook in ("on_request", "pre_call")
                raise GuardrailScanLimit(loaded.name, error.chars, error.limit, before) from None
            logger.warning("plugin %s %s: continuing without it", loaded.name, reason)
            return None
        except TimeoutError:
            loaded.timeouts += 1
            reason = f"timed out after {round(loaded.timeout_seconds * 1000)} ms in {hook}"
        except Exception as error:
            loaded.failures += 1
            reason = f"failed in {hook} ({type(error).__name__})"
            logger.debug("plugin %s %s", loaded.name, reason, exc_info=True)
        # It did not finish, so it did not apply: the guardrails header must not claim it did.
        del call.guardrails[applied:]
        if loaded.abort:
            logger.warning("plugin %s %s: refusing request %s", loaded.name, reason, call.request_id)
            raise PluginFailed(loaded.name, reason)
        logger.warning("plugin %s %s: continuing without it", loaded.name, reason)
        return None
