"""Where one app's ``Runtime`` is found by the layers that are built before it exists.

Starlette builds the middleware stack before the lifespan runs, and the ``Runtime`` (LiteLLM, the
stores, the engines) exists only once the lifespan has built it. ``create_app`` therefore makes one
``RuntimeHandle``, hands it to every middleware layer in ``__init__`` and keeps it on ``app.state``
for the routes (``routeiq.api.runtime.runtime_of``); the lifespan puts the runtime in it. One
handle per app: two apps in one process share nothing. Importing this module imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typing only: the runtime module imports LiteLLM
    from routeiq.config_apply import ConfigApplier
    from routeiq.runtime import Runtime


class NotStarted(RuntimeError):
    """A request reached a layer that needs the runtime before the lifespan built it."""


class RuntimeHandle:
    """The app's current runtime. A config apply (``routeiq.config_apply``) swaps in a new one while
    the app serves: a request reads the handle when it needs a part, and keeps whatever it got."""

    __slots__ = ("_runtime", "config")

    def __init__(self) -> None:
        self._runtime: Runtime | None = None
        self.config: ConfigApplier | None = None  # the lifespan's, once started

    @property
    def started(self) -> Runtime | None:
        """The runtime, or None while the app is starting."""
        return self._runtime

    def get(self) -> Runtime:
        runtime = self._runtime
        if runtime is None:
            raise NotStarted("the app's lifespan has not built its runtime yet")
        return runtime

    def attach(self, runtime: Runtime) -> None:
        """Serve ``runtime`` from now on (at startup, and at each config apply)."""
        self._runtime = runtime
