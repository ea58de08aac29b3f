"""The real server, configured by nothing but the standard OTEL_* variables, exports its spans over
OTLP/HTTP to a collector: here a tiny in-test HTTP server that decodes what arrives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.eventually import eventually_sync
from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

MASTER_KEY = "sk-test-master"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Collector:
    """Accepts OTLP/HTTP protobuf trace exports on ``/v1/traces`` and keeps every span."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path == "/v1/traces":
                    collector.receive(body)
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {kv.key: _value(kv.value) for kv in span.attributes}
                    with self.lock:
                        self.spans.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "attributes": attributes,
                                "resource": resource,
                            }
                        )

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [span for span in self.spans if span["name"] == name]


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    collector = Collector()
    collector.thread.start()
    yield collector
    collector.server.shutdown()
    collector.server.server_close()


@pytest.fixture(scope="module")
def gateway(collector: Collector, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("tracing")
    with MockUpstream() as upstream:
        config = {
            "model_list": [
                deployment("solo", "gpt-solo", upstream.base_url),
                {
                    "model_name": "mocked",
                    "litellm_params": {"model": "anthropic/claude-x", "mock_response": "hi"},
                },
            ],
            "router_settings": {"num_retries": 0},
        }
        env = {
            "ROUTEIQ_MASTER_KEY": MASTER_KEY,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "routeiq-e2e",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=e2e",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        with Gateway(config, tmp, env) as gateway:
            yield gateway


def chat(gateway: Gateway, model: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "secret prompt words"}]}
    auth = {"authorization": f"Bearer {MASTER_KEY}", **(headers or {})}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=auth, timeout=30)


def test_spans_reach_the_collector_with_the_callers_trace_id(gateway: Gateway, collector: Collector) -> None:
    parent = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    assert chat(gateway, "solo", parent).status_code == 200

    def exported() -> list[dict[str, Any]]:
        mine = [span for span in collector.spans if span["trace_id"] == TRACE_ID]
        assert {"routeiq.request", "routeiq.route", "chat gpt-solo"} <= {span["name"] for span in mine}
        return mine

    spans = eventually_sync(exported)
    request = next(span for span in spans if span["name"] == "routeiq.request")
    assert request["resource"]["service.name"] == "routeiq-e2e"
    assert request["resource"]["deployment.environment"] == "e2e"
    assert request["attributes"]["routeiq.outcome"] == "ok"
    attempt = next(span for span in spans if span["name"] == "chat gpt-solo")
    assert attempt["attributes"]["gen_ai.provider.name"] == "openai"
    assert attempt["attributes"]["gen_ai.usage.output_tokens"] > 0
    assert all("secret prompt words" not in str(span["attributes"]) for span in spans)


def test_the_litellm_executor_is_traced_with_its_provider(gateway: Gateway, collector: Collector) -> None:
    # A probe before the call: had it been traced, its span would be exported with the call's or before.
    assert httpx.get(f"{gateway.url}/_health/ready", timeout=10).status_code == 200
    assert chat(gateway, "mocked").status_code == 200

    def attempt() -> dict[str, Any]:
        spans = collector.named("chat claude-x")
        assert len(spans) == 1, spans
        return spans[0]

    span = eventually_sync(attempt)
    assert span["attributes"]["gen_ai.provider.name"] == "anthropic"
    assert span["attributes"]["gen_ai.request.model"] == "claude-x"
    assert span["attributes"]["gen_ai.usage.input_tokens"] > 0
    assert not [span for span in collector.spans if "_health" in str(span["attributes"])]
    assert [span for span in collector.spans if "/v1/chat/completions" in str(span["attributes"])]
