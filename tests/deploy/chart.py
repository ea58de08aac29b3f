"""Render the Helm chart with the Helm library itself (helm-python-sdk: no helm binary, no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "routeiq"
TIERS = ("dev", "small", "production")
RELEASE = "routeiq"
NAMESPACE = "llm"
# Kinds from CRDs (Prometheus Operator, Gateway API): Kubernetes' own schemas do not cover them.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "HTTPRoute"}


def tier_values(tier: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / f"values-{tier}.yaml").read_text())
    return values


def render(values: dict[str, Any] | None = None, **options: Any) -> list[dict[str, Any]]:
    """Every object the chart renders for ``values`` (NOTES.txt left out)."""
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values or {})
        rendered = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True, **options)
    objects = []
    for path, text in sorted(rendered.items()):
        if path.endswith(".yaml"):
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def rendered_text(values: dict[str, Any] | None, template: str) -> str:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return rendered[f"routeiq/templates/{template}"]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [item for item in objects if item["kind"] == kind]


def gateway(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [item for item in of_kind(objects, "Deployment") if item["metadata"]["name"] == RELEASE]
    return deployment


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload."""
    return [
        (f"{item['kind']}/{item['metadata']['name']}", item["spec"]["template"]["spec"])
        for item in objects
        if item["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet")
    ]
