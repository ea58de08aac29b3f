"""Every RouteIQ metric the alert rules, the HPA and the Grafana dashboard name is one a running
gateway really exports at /metrics (counters with Prometheus' ``_total``, histograms' ``_bucket``):
the ``routeiq_*`` ones and the OpenTelemetry GenAI ones (``gen_ai_*``), and every label an expression
selects or groups by is one those series carry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.chart import CHART, of_kind, render, tier_values
from tests.support.gateway import Gateway

ROOT = Path(__file__).resolve().parents[2]
METRIC = re.compile(r"\b(?:routeiq|gen_ai)_[a-z0-9_]+\b")
# Where PromQL names labels rather than metrics: selectors and by/without/on/ignoring groupings.
SELECTOR = re.compile(r"\{([^}]*)\}")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
SAMPLE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*\{(.*)\} ")
LABEL_NAME = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def metric_names(expression: str) -> set[str]:
    """The metric names an expression reads (label names inside selectors and groupings are not)."""
    return set(METRIC.findall(GROUPING.sub("", SELECTOR.sub("", expression))))


def label_names(expression: str) -> set[str]:
    names = {name for selector in SELECTOR.findall(expression) for name in LABEL_NAME.findall(selector)}
    for grouping in GROUPING.findall(expression):
        names |= {name.strip() for name in grouping.split(",") if name.strip()}
    return names


def _rule_expressions() -> list[str]:
    values = tier_values("production")
    (rule,) = of_kind(render(values), "PrometheusRule")
    return [item["expr"] for group in rule["spec"]["groups"] for item in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads((CHART / "dashboards" / "routeiq.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def _hpa_metrics() -> list[str]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    return [
        name
        for name in schema["properties"]["autoscaling"]["properties"]["customMetric"]["properties"]["name"][
            "enum"
        ]
        if name
    ]


def _exported_names(exposition: str) -> set[str]:
    names = set()
    for line in exposition.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def _exported_labels(exposition: str) -> set[str]:
    """Every label name on a sample line (``name{a="x",b="y"} 1``)."""
    names = set()
    for line in exposition.splitlines():
        sample = SAMPLE.match(line)
        if sample is not None:
            names |= set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', sample.group(1)))
    return names


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> str:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    with Gateway(config, tmp_path_factory.mktemp("metrics")) as gateway:
        body = {"model": "auto", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
        assert httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30).status_code == 200
        # A streamed answer too: time to first token is only measured on streams.
        streamed = httpx.post(f"{gateway.url}/v1/chat/completions", json={**body, "stream": True}, timeout=30)
        assert streamed.status_code == 200
        return httpx.get(f"{gateway.url}/metrics", timeout=10).text


@pytest.fixture(scope="module")
def exported(exposition: str) -> set[str]:
    return _exported_names(exposition)


@pytest.mark.parametrize(
    "source", ["prometheus-rules", "grafana-dashboard", "hpa-custom-metric"], ids=lambda source: source
)
def test_metric_names_are_exported(source: str, exported: set[str]) -> None:
    expressions = {
        "prometheus-rules": _rule_expressions,
        "grafana-dashboard": _dashboard_expressions,
        "hpa-custom-metric": _hpa_metrics,
    }[source]()
    named = {name for expression in expressions for name in metric_names(expression)}
    assert named, "no RouteIQ metric named at all"
    assert sorted(named - exported) == [], f"not exported by the gateway; it exports {sorted(exported)}"


def test_dashboard_reads_the_genai_metrics_by_labels_they_carry(exposition: str) -> None:
    expressions = _dashboard_expressions()
    named = {name for expression in expressions for name in metric_names(expression)}
    assert {
        "gen_ai_client_token_usage_sum",
        "gen_ai_server_request_duration_seconds_bucket",
        "gen_ai_server_time_to_first_token_seconds_bucket",
    } <= named
    # Labels can only be seen on series that have samples: after one plain and one streamed call
    # every GenAI series has some (a failure counter or a denial would need failures or denials).
    genai = [expression for expression in expressions if "gen_ai_" in "".join(metric_names(expression))]
    exported = _exported_labels(exposition) | {"le"}
    used = {label for expression in genai for label in label_names(expression)}
    assert {"gen_ai_request_model", "gen_ai_token_type", "error_type"} <= used
    assert sorted(used - exported) == [], f"labels no exported series carries; they carry {sorted(exported)}"
