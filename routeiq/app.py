"""The ASGI app: ``create_app(settings)``, its lifespan, and the middleware stack in order."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from routeiq import __version__
from routeiq.admin_ui.serve import mount_admin_ui
from routeiq.api import admin, anthropic, count_tokens, feedback, health, openai, responses
from routeiq.api.errors import install_error_handlers
from routeiq.api.fast_path import ModelCallRoutes
from routeiq.config import CONFIG_PATH_ENV, load_settings
from routeiq.middleware.anthropic_errors import AnthropicErrorMiddleware
from routeiq.middleware.auth import AuthMiddleware
from routeiq.middleware.backpressure import BackpressureMiddleware
from routeiq.middleware.plugins import PluginsMiddleware
from routeiq.middleware.policy import PolicyMiddleware
from routeiq.middleware.quota import QuotaMiddleware
from routeiq.middleware.request_id import RequestIdMiddleware
from routeiq.observability.ledger import RequestLedgerMiddleware
from routeiq.observability.tracing import TracedLayer, TracerProvider, Tracing, build_tracing, instrument_app
from routeiq.resilience.drain import DrainOnSignal
from routeiq.resilience.traffic import TrafficGate
from routeiq.runtime_handle import RuntimeHandle
from routeiq.settings import Settings

logger = logging.getLogger("routeiq")

# Net new container objects between young garbage collections (CPython's default: 700); see lifespan.
GC_YOUNG_THRESHOLD = 50_000

# Every model call's POST route, for the fast path (api/fast_path.py).
MODEL_CALL_ROUTES = {
    **openai.MODEL_CALL_ROUTES,
    **anthropic.MODEL_CALL_ROUTES,
    **responses.MODEL_CALL_ROUTES,
}


def middleware_stack(
    settings: Settings, gate: TrafficGate, runtime: RuntimeHandle, tracing: Tracing | None = None
) -> list[Middleware]:
    """Outermost first: each layer sees only what the layers before it let through.

    CORS is there only when origins are configured: with none allowed it would change nothing but
    still wrap every response. With tracing on, each layer after the ledger gets a span of its own."""
    tracing = tracing if tracing is not None else Tracing.off()

    def layer(cls: Any, name: str, **options: Any) -> Middleware:
        if tracing.enabled:
            traced: Any = TracedLayer
            return Middleware(traced, layer=cls, name=name, tracing=tracing, **options)
        return Middleware(cls, **options)

    master_key = settings.master_key.get_secret_value() if settings.master_key else None
    cors = [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["x-request-id", "retry-after", "retry-after-ms"],
        )
    ]
    return [
        *(cors if settings.cors_allow_origins else []),
        Middleware(RequestIdMiddleware),
        # Anthropic's error envelope on its routes, for a refusal by any layer below.
        Middleware(AnthropicErrorMiddleware),
        # Outside every layer that can refuse a request, so each one leaves exactly one record.
        Middleware(RequestLedgerMiddleware, runtime=runtime, tracing=tracing),
        layer(
            BackpressureMiddleware,
            "admission",
            gate=gate,
            retry_after_seconds=settings.shed_retry_after_seconds,
        ),
        layer(
            AuthMiddleware,
            "auth",
            master_key=master_key,
            admin_keys=[key.get_secret_value() for key in settings.admin_keys],
            metrics_auth=settings.metrics_auth,
            runtime=runtime,
        ),
        # After identity is known, in this order. Each reaches its engine through the runtime handle,
        # and does nothing for calls its engine does not govern.
        layer(PolicyMiddleware, "policy", runtime=runtime),
        layer(QuotaMiddleware, "quota", runtime=runtime),
        layer(PluginsMiddleware, "plugins", runtime=runtime),
        # Innermost: model calls go straight to their handlers (api/fast_path.py). With tracing on
        # they keep FastAPI's routing, whose instrumentation names the route on the server span.
        *([] if tracing.enabled else [Middleware(ModelCallRoutes, routes=MODEL_CALL_ROUTES)]),
    ]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Imports LiteLLM: only when an app actually starts.
    from routeiq.config_apply import ConfigApplier, startup_config
    from routeiq.runtime import build_runtime, open_foundation

    settings: Settings = app.state.settings
    if settings.master_key is None:
        logger.warning("ROUTEIQ_MASTER_KEY is not set: the data plane is OPEN to anyone who can reach it")
    if not settings.admin_keys:
        logger.info("no ROUTEIQ_ADMIN_KEYS: the control plane (/admin) is closed")
    handle: RuntimeHandle = app.state.runtime
    tracing: Tracing = app.state.tracing
    config_path: Path | None = app.state.config_path
    # The foundation (state, database, HTTP pool, metrics) outlives every runtime a config apply
    # builds (routeiq.config_apply); the runtime is built from the file or the newest applied config.
    foundation = await open_foundation(settings)
    try:
        live_settings, served = await startup_config(settings, config_path, foundation)
        handle.attach(await build_runtime(live_settings, app.state.gate, tracing, foundation))
        handle.config = ConfigApplier(handle, foundation, app.state.gate, tracing, config_path, served)
        await foundation.start_changes()  # every live-changeable part, and the config, watch by now
    except BaseException:
        if handle.started is not None:
            await handle.get().close()
        await foundation.close()
        raise
    handle.config.start()
    # LiteLLM's import leaves millions of long-lived objects; without this every full garbage
    # collection walks them all, in the middle of some unlucky request.
    gc.collect()
    gc.freeze()
    # A request allocates hundreds of objects that its end frees by reference counting; at the
    # default threshold (700) those bursts alone set off a young collection every few requests,
    # walking every in-flight request's objects: ~10% of the CPU of a busy worker (measured with
    # gc.callbacks: 3,661 young, 332 middle and 29 full collections in 25,000 requests). Cyclic
    # garbage is still collected, once per GC_YOUNG_THRESHOLD more surviving objects.
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    DrainOnSignal(app.state.gate, settings.drain_timeout_seconds).install()
    try:
        yield
    finally:
        await handle.config.close()  # swapped-out runtimes still waiting for their requests close now
        await handle.get().close()
        await foundation.close()
        tracing.shutdown()  # exports the spans still buffered


def create_app(
    settings: Settings,
    *,
    tracer_provider: TracerProvider | None = None,
    config_path: str | Path | None = None,
) -> FastAPI:
    """The app. Tracing follows the ``OTEL_*`` environment variables (off when none asks for it),
    unless ``tracer_provider`` is given: then its spans go there, whatever the environment says.
    ``config_path`` is the file ``settings`` were read from (what config apply compares and watches)."""
    gate = TrafficGate(settings.max_concurrent_requests, settings.queue_timeout_ms, settings.queue_max_depth)
    runtime = RuntimeHandle()  # filled in by the lifespan; the same one for every layer and route
    tracing = build_tracing(
        os.environ, capture_content=settings.trace_message_content, provider=tracer_provider
    )
    app = FastAPI(
        title="RouteIQ",
        version=__version__,
        description="OpenAI-compatible LLM gateway that picks the right model for every request.",
        lifespan=lifespan,
        middleware=middleware_stack(settings, gate, runtime, tracing),
        # FastAPI's built-in OpenTelemetry hook asks the global providers on every request (tens of
        # microseconds); RouteIQ's own observability decides what to trace (instrument_app below).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.gate = gate
    app.state.runtime = runtime
    app.state.tracing = tracing
    app.state.config_path = Path(config_path) if config_path else None
    instrument_app(app, tracing)  # the HTTP server span, only when tracing is on
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(openai.router)
    app.include_router(anthropic.router)
    app.include_router(count_tokens.router)
    app.include_router(responses.router)
    app.include_router(feedback.router)
    app.include_router(admin.router)
    mount_admin_ui(app)  # /ui: the admin web UI
    return app


def app_from_environment() -> FastAPI:
    """The factory uvicorn and gunicorn workers call: settings from ``ROUTEIQ_CONFIG`` and the environment."""
    config_path = os.environ.get(CONFIG_PATH_ENV)
    return create_app(load_settings(config_path), config_path=config_path)
