"""The plugin interface: metadata, lifecycle, and the hooks the plugins layer calls.

A plugin is a subclass of ``Plugin`` with a ``name``, a ``version``, a default ``priority`` (lower
runs first) and a pydantic ``settings_model`` for its own YAML settings. It overrides only the hooks
it needs: the manager looks at which methods a class overrides and never calls the others, so an
unused hook costs nothing.

Hooks, in the order a request meets them:

* ``on_request(call, connection)`` — every HTTP request; return a ``Response`` to answer it here.
* ``pre_call(call)`` — model calls, after the JSON body is read: rewrite ``call.body`` or raise
  ``GuardrailBlocked``.
* ``on_stream_chunk(call, event)`` — each server-sent event of a streamed model call; return the
  bytes to send instead (``b""`` drops the event).
* ``post_call(call, result)`` — a model call that answered below 400, after the response (streams
  included) is complete. With ``reads_response_body = True`` a non-streamed body is held back until
  the hook ran, and ``result.body`` may be replaced.
* ``on_error(call, result)`` — a model call answered with status 400 or above.

CPU-heavy work (scanning a call's text) goes through ``Plugin.run_cpu``: it runs on the manager's
worker threads, so the event loop keeps serving (liveness included) and the hook's ``timeout_ms``
fires on time. A thread cannot be killed, so the work must also be bounded on its own: linear-time
patterns over at most ``max_scan_chars`` characters (``check_scan_size``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from starlette.requests import HTTPConnection
from starlette.responses import Response

from routeiq.errors import GuardrailBlocked as GuardrailBlocked  # re-exported: where plugin authors find it
from routeiq.governance.call import GovernedCall
from routeiq.store.records import SpendRecord

if TYPE_CHECKING:  # typing only: importing them costs nothing at runtime this way
    import aiohttp

    from routeiq.settings import Settings
    from routeiq.state.base import StateStore

GROUP = "routeiq.plugins"  # the entry point group third-party plugins register under

HealthStatus = Literal["ok", "degraded", "down"]


class NoSettings(BaseModel):
    """For plugins without settings: any key given is an error."""

    model_config = ConfigDict(extra="forbid")


SettingsT = TypeVar("SettingsT", bound=BaseModel)


@dataclass(frozen=True)
class PluginServices:
    """What the gateway lends plugins at startup."""

    state: StateStore  # shared counters (Redis when configured)
    submit_spend: Callable[[SpendRecord], bool]  # the durable spend log; False when its queue is full
    http: aiohttp.ClientSession  # the gateway's pooled HTTP client
    settings: Settings


@dataclass(frozen=True, slots=True)
class PluginHealth:
    status: HealthStatus = "ok"
    detail: str | None = None


@dataclass
class CallResult:
    """How a model call ended, as post_call and on_error see it (usage and cost are on the call)."""

    status: int
    streamed: bool
    # The non-streamed response body when a plugin asked for it (``reads_response_body``); a
    # post_call hook may assign new bytes and the client gets those.
    body: bytes | None = None


class ScanLimitExceeded(Exception):
    """The call's text is longer than a guardrail checks (its ``max_scan_chars``), so it was not
    checked. The manager answers 413 ``guardrail_scan_limit`` when the plugin's failure mode is
    ``abort`` and skips the guardrail (logged, counted) when it is ``continue``."""

    def __init__(self, chars: int, limit: int) -> None:
        super().__init__(f"{chars} characters of text, more than max_scan_chars ({limit})")
        self.chars = chars
        self.limit = limit


def check_scan_size(found: Iterable[str], limit: int) -> list[str]:
    """The texts, or ``ScanLimitExceeded`` when together they are longer than ``limit`` characters
    (checked before any scanning, so an oversized call costs nothing but this sum)."""
    found = list(found)
    chars = sum(map(len, found))
    if chars > limit:
        raise ScanLimitExceeded(chars, limit)
    return found


T = TypeVar("T")

# Built-in guardrails check at most this many characters of a call's text by default (about 125k
# tokens); at the slowest measured adversarial rate that is well under a second of scanning.
DEFAULT_MAX_SCAN_CHARS = 500_000
# Below this many characters a scan runs inline: it takes well under a millisecond even on hostile
# text, less than the hop to a worker thread and back.
INLINE_SCAN_CHARS = 2048


class Plugin(Generic[SettingsT]):
    """Base class of every plugin. Subclasses set the class attributes and override hooks."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    priority: ClassVar[int] = 100
    settings_model: ClassVar[type[BaseModel]] = NoSettings  # validates the YAML ``settings:``
    # Hold a non-streamed response back until post_call ran (see CallResult.body). An instance may
    # set it from its settings: only plugins that really read the body should cost the buffering.
    reads_response_body: bool = False

    # True when the hooks wait on nothing but ``run_cpu`` (the built-in guardrails and the cost
    # tracker). The manager then leaves the hook timeout to run_cpu, which applies it only when the
    # work really goes to a thread: asyncio.timeout costs ~5 µs a use, hooks run on every call, and a
    # hook that never waits could not be stopped by a timeout anyway.
    waits_only_in_run_cpu: ClassVar[bool] = False

    # The manager's worker threads for run_cpu (None, outside a manager: the loop's default), and the
    # hook timeout run_cpu applies (set by the manager for a plugin that ``waits_only_in_run_cpu``;
    # None: the manager times the whole hook).
    cpu_executor: Executor | None = None
    hook_timeout_seconds: float | None = None

    def __init__(self, settings: SettingsT) -> None:
        self.settings = settings

    async def run_cpu(self, work: Callable[[], T], chars: int | None = None) -> T:
        """``work()`` on a worker thread (inline when the caller says it reads fewer than
        ``INLINE_SCAN_CHARS`` characters). The loop stays free while it runs, and a hook timeout
        stops the wait; the thread finishes in the background, so ``work`` must not touch the call:
        return a result and apply it on the loop."""
        if chars is not None and chars < INLINE_SCAN_CHARS:
            return work()
        scan = asyncio.get_running_loop().run_in_executor(self.cpu_executor, work)
        if self.hook_timeout_seconds is None:
            return await scan
        async with asyncio.timeout(self.hook_timeout_seconds):
            return await scan

    # Lifecycle -----------------------------------------------------------------------------

    async def startup(self, services: PluginServices) -> None:
        """Called once in the app's lifespan before traffic; raising here fails startup."""

    async def shutdown(self) -> None:
        """Called once when the app stops."""

    async def health(self) -> PluginHealth:
        return PluginHealth()

    # Hooks ---------------------------------------------------------------------------------

    async def on_request(self, call: GovernedCall, connection: HTTPConnection) -> Response | None:
        return None

    async def pre_call(self, call: GovernedCall) -> None:
        return None

    async def on_stream_chunk(self, call: GovernedCall, event: bytes) -> bytes:
        return event

    async def post_call(self, call: GovernedCall, result: CallResult) -> None:
        return None

    async def on_error(self, call: GovernedCall, result: CallResult) -> None:
        return None


HOOKS = ("on_request", "pre_call", "on_stream_chunk", "post_call", "on_error")


def implements(plugin_class: type[Plugin[Any]], hook: str) -> bool:
    """Whether the class overrides ``hook`` (the base versions do nothing and are never called)."""
    return getattr(plugin_class, hook) is not getattr(Plugin, hook)
