"""Every RouteIQ metric the alert rules, the HPA and the Grafana dashboard name is one a running
gateway really exports at /metrics (counters with Prometheus' ``_total``, histograms' ``_bucket``)."""

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
METRIC = re.compile(r"\brouteiq_[a-z0-9_]+\b")


def _rule_expressions() -> list[str]:
    values = tier_values("production")
    (rule,) = of_kind(render(values), "PrometheusRule")
    return [item["expr"] for group in rule["spec"]["groups"] for item in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads((CHART / "dashboards" / "routeiq.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


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


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    with Gateway(config, tmp_path_factory.mktemp("metrics")) as gateway:
        body = {"model": "auto", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
        assert httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30).status_code == 200
        text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    return _exported_names(text)


@pytest.mark.parametrize(
    "source", ["prometheus-rules", "grafana-dashboard", "hpa-custom-metric"], ids=lambda source: source
)
def test_metric_names_are_exported(source: str, exported: set[str]) -> None:
    expressions = {
        "prometheus-rules": _rule_expressions,
        "grafana-dashboard": _dashboard_expressions,
        "hpa-custom-metric": _hpa_metrics,
    }[source]()
    named = {name for expression in expressions for name in METRIC.findall(expression)}
    assert named, "no RouteIQ metric named at all"
    assert sorted(named - exported) == [], f"not exported by the gateway; it exports {sorted(exported)}"
