"""OpenTelemetry traces: the provider built from the standard ``OTEL_*`` variables, and ``Tracing``,
the one object the parts that make spans are handed.

Off unless the environment asks for it (an exporter or an OTLP endpoint named, see
``tracer_provider_from_environment``), and then nothing on the request path creates a span, attaches
a context or wraps a layer: every span site gets the shared ``NOT_RECORDING`` span and checks
``is_recording()`` before computing an attribute. When on, RouteIQ's spans only continue a trace
that is being recorded (the HTTP server span's, which the sampler decided on): a request the
sampler left out makes no spans of RouteIQ's at all. ``create_app`` builds one ``Tracing`` per app;
nothing is global, so two apps in one process never share a provider unless the user installed a
global one themselves (``opentelemetry-instrument`` or their own code), which is then used.

Prompt and completion text is never put on a span unless ``trace_message_content`` is set.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeiq import __version__

NOT_RECORDING: Span = INVALID_SPAN  # what every span site gets while tracing is off: a shared no-op
INSTRUMENTATION_NAME = "routeiq"
DEFAULT_SERVICE_NAME = "routeiq"
# Probes and scrapes are not traced: they would outnumber the requests worth looking at.
EXCLUDED_URLS = "/_health/.*,/metrics"
OTLP_PROTOCOLS = ("grpc", "http/protobuf")


class _NoSpan(AbstractContextManager[Span]):
    """``Tracing.span`` while off: enters to the shared no-op span, allocates nothing."""

    def __enter__(self) -> Span:
        return NOT_RECORDING

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_SPAN = _NoSpan()


class Tracing:
    """RouteIQ's tracer, or nothing. ``enabled`` is fixed for the app's life."""

    __slots__ = ("_owned", "_provider", "_tracer", "capture_content", "enabled")

    def __init__(
        self, provider: TracerProvider | None, *, capture_content: bool = False, owned: bool = False
    ) -> None:
        self._provider = provider
        self._owned = owned  # built here from the environment: flushed and shut down with the app
        self.enabled = provider is not None
        self.capture_content = capture_content and self.enabled
        self._tracer: Tracer | None = (
            provider.get_tracer(INSTRUMENTATION_NAME, __version__) if provider is not None else None
        )

    @classmethod
    def off(cls) -> Tracing:
        return cls(None)

    @property
    def provider(self) -> TracerProvider | None:
        return self._provider

    def span(
        self, name: str, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] | None = None
    ) -> AbstractContextManager[Span]:
        """A span that is current inside the ``with`` block (a child of the current one), ended on
        exit with the exception, if any, recorded; the shared no-op span when tracing is off or the
        request is not sampled."""
        if self._tracer is None or not trace.get_current_span().is_recording():
            return _NO_SPAN
        return _current_span(self._tracer, name, kind, attributes)

    def start(
        self, name: str, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] | None = None
    ) -> Span:
        """A child of the current span that is not made current; the caller ends it (an upstream
        attempt whose stream outlives the call that started it)."""
        if self._tracer is None or not trace.get_current_span().is_recording():
            return NOT_RECORDING
        return self._tracer.start_span(name, kind=kind, attributes=attributes)

    def shutdown(self) -> None:
        """Export what is buffered and stop, for a provider this object built."""
        if self._owned and self._provider is not None:
            shutdown = getattr(self._provider, "shutdown", None)
            if shutdown is not None:
                shutdown()


def build_tracing(
    environ: Mapping[str, str], *, capture_content: bool = False, provider: TracerProvider | None = None
) -> Tracing:
    """The app's ``Tracing``: ``provider`` when given (tests, embedders), else a global provider the
    user installed, else one built from the ``OTEL_*`` variables, else off."""
    if provider is not None:
        return Tracing(provider, capture_content=capture_content)
    global_provider = trace.get_tracer_provider()
    if _is_real(global_provider) and not _sdk_disabled(environ):
        return Tracing(global_provider, capture_content=capture_content)
    built = tracer_provider_from_environment(environ)
    return Tracing(built, capture_content=capture_content, owned=True)


def _is_real(provider: TracerProvider) -> bool:
    """A provider someone installed, not the API's placeholder or no-op."""
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _sdk_disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    """``OTEL_TRACES_EXPORTER`` when set; else ``otlp`` if an OTLP endpoint is configured; else none.

    The standard's default exporter is ``otlp``; RouteIQ keeps tracing off until one is named or an
    endpoint is given, so a gateway started without any ``OTEL_*`` variable pays nothing."""
    named = environ.get("OTEL_TRACES_EXPORTER")
    if named is not None:
        return [name.strip().lower() for name in named.split(",") if name.strip().lower() not in ("", "none")]
    endpoints = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    return ["otlp"] if any(environ.get(name) for name in endpoints) else []


def tracer_provider_from_environment(environ: Mapping[str, str]) -> TracerProvider | None:
    """An SDK provider configured by the standard variables, or None when tracing is off.

    - on: ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``; ``none`` is off) or an OTLP endpoint set;
      off whatever else is set when ``OTEL_SDK_DISABLED=true``.
    - ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``: ``http/protobuf``
      (the standard's default) or ``grpc``. Endpoint, headers, timeout, compression and certificates
      are read by the exporter itself from the usual ``OTEL_EXPORTER_OTLP_*`` variables.
    - ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``, read by the SDK (default
      ``parentbased_always_on``); ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` for the
      resource (service name ``routeiq`` when none is given); ``OTEL_BSP_*`` for batching.

    The SDK reads some of these from ``os.environ`` itself, so ``environ`` should be that (tests
    that need another configuration inject a provider instead).
    """
    if _sdk_disabled(environ):
        return None
    names = _exporter_names(environ)
    if not names:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({SERVICE_VERSION: __version__})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = SdkTracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
    for name in names:
        if name == "otlp":
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(environ)))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER: {name!r} is not one of otlp, console, none")
    return provider


def _otlp_exporter(environ: Mapping[str, str]) -> Any:
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter()
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not one of {', '.join(OTLP_PROTOCOLS)}")


def instrument_app(app: Any, tracing: Tracing) -> None:
    """The HTTP server span of every request (``opentelemetry-instrumentation-fastapi``), with the
    incoming ``traceparent`` honoured; only when tracing is on. Per-message ``send``/``receive``
    spans are left out: a stream would get one per chunk."""
    if not tracing.enabled:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracing.provider,
        meter_provider=NoOpMeterProvider(),  # RouteIQ's metrics are Prometheus (observability/metrics.py)
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
    )


class TracedLayer:
    """A governance layer (admission, auth, policy, quota, plugins) with a span of its own.

    The span ``routeiq.<name>`` covers the layer's own work: from the moment it gets the request
    until it hands the request on (then the next layers' spans are its siblings, not its children)
    or answers on its own (a refusal: the status is recorded and the span marked as an error). Only
    requests whose request span is being recorded pay anything; the stack includes these wrappers
    only when tracing is on.
    """

    def __init__(self, app: ASGIApp, *, layer: type, name: str, tracing: Tracing, **options: Any) -> None:
        self._tracing = tracing
        self._name = f"routeiq.{name}"
        self._key = f"routeiq.layer.{name}"
        self._next = app
        self._layer: ASGIApp = layer(self._hand_on, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not trace.get_current_span().is_recording():
            await self._layer(scope, receive, send)
            return
        parent = otel_context.get_current()
        span = self._tracing.start(self._name)
        scope.setdefault("state", {})[self._key] = (span, parent)
        token = otel_context.attach(trace.set_span_in_context(span, parent))

        async def answered(message: Message) -> None:
            if message["type"] == "http.response.start" and span.is_recording():
                status = int(message["status"])  # the layer answered itself: nothing was handed on
                span.set_attribute("http.response.status_code", status)
                if status >= 400:
                    span.set_status(Status(StatusCode.ERROR, "refused"))
            await send(message)

        try:
            await self._layer(scope, receive, answered)
        except BaseException as error:
            mark_failed(span, error)
            raise
        finally:
            otel_context.detach(token)
            if span.is_recording():  # not ended at the hand-over: the layer answered itself
                span.end()

    async def _hand_on(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = scope.get("state", {}).pop(self._key, None)
        if entry is None:
            await self._next(scope, receive, send)
            return
        span, parent = entry
        span.end()
        token = otel_context.attach(parent)  # the next layers are siblings of this one
        try:
            await self._next(scope, receive, send)
        finally:
            otel_context.detach(token)


@contextmanager
def _current_span(
    tracer: Tracer, name: str, kind: SpanKind, attributes: Mapping[str, Any] | None
) -> Iterator[Span]:
    with tracer.start_as_current_span(
        name, kind=kind, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except BaseException as error:
            mark_failed(span, error)
            raise


def mark_failed(span: Span, error: BaseException) -> None:
    """An exception ended the span: its class and error code, not its message (a plugin's message
    may quote what it found in the prompt)."""
    if not span.is_recording():
        return
    code = getattr(error, "code", None)
    span.set_attribute("error.type", code if isinstance(code, str) else type(error).__qualname__)
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))
