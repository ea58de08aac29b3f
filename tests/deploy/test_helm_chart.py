"""The Helm chart, rendered for each tier by the Helm library (helm-python-sdk), linted, every object
validated against Kubernetes' own schemas (kubernetes-validate, strict), and its invariants asserted."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from routeiq.config import CONFIG_PATH_ENV, load_settings
from routeiq.settings import Settings
from tests.deploy.chart import (
    CHART,
    CRD_KINDS,
    TIERS,
    gateway,
    of_kind,
    pod_specs,
    render,
    rendered_text,
    tier_values,
)

KUBERNETES_VERSION = "1.37"  # the newest kubernetes-validate ships; the chart's kubeVersion floor is 1.27
SECRET_SETTINGS = {"ROUTEIQ_MASTER_KEY", "ROUTEIQ_ADMIN_KEYS", "ROUTEIQ_DATABASE_URL", "ROUTEIQ_REDIS_URL"}
ALL_FEATURES = {
    "httpRoute": {"enabled": True, "parentRefs": [{"name": "gateway"}], "hostnames": ["llm.example.com"]}
}


def _everything() -> dict[str, Any]:
    values = tier_values("production")
    values.update(ALL_FEATURES)
    return values


VARIANTS = {**{tier: tier_values(tier) for tier in TIERS}, "defaults": {}, "everything": _everything()}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    values = VARIANTS[request.param]
    return request.param, values, render(values)


@pytest.mark.parametrize("tier", TIERS)
def test_helm_lint_is_clean(tier: str) -> None:
    report = helm.lint(CHART, tier_values(tier), strict=True, kube_version=f"v{KUBERNETES_VERSION}.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report["messages"]


def test_every_object_is_valid_kubernetes(variant: tuple[str, dict[str, Any], list[dict[str, Any]]]) -> None:
    _, _, objects = variant
    for item in objects:
        if item["kind"] in CRD_KINDS:
            assert item["apiVersion"].split("/")[0] in ("monitoring.coreos.com", "gateway.networking.k8s.io")
            continue
        kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)  # raises on any error


def test_schema_rejects_inline_secrets_and_unknown_keys() -> None:
    with helm.Chart.load(CHART) as chart:
        for bad in (
            {"env": {"ROUTEIQ_MASTER_KEY": "sk-inline"}},
            {"env": {"ROUTEIQ_DATABASE_URL": "postgresql://u:p@db/routeiq"}},
            {"env": {"OPENAI_API_KEY": "sk-inline"}},  # not a RouteIQ setting at all
            {"extraEnv": [{"name": "ROUTEIQ_ADMIN_KEYS", "value": "inline"}]},
            {"autoscaling": {"customMetric": {"name": "requests_per_second"}}},
            {"redis": {"bundled": {"enabled": True}, "external": {"existingSecret": "also"}}},
            {"replicas": 3},
        ):
            with pytest.raises(helm.HelmValuesError):
                chart.validate_schema(bad)
        chart.validate_schema(
            {
                "extraEnv": [
                    {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "k"}}}
                ]
            }
        )


def test_values_files_hold_no_secret_values() -> None:
    for path in [CHART / "values.yaml", *(CHART / f"values-{tier}.yaml" for tier in TIERS)]:
        text = path.read_text()
        assert "sk-" not in text and "password:" not in text.lower(), path
        for tier_env in (yaml.safe_load(text) or {}).get("env", {}):
            assert tier_env not in SECRET_SETTINGS, (path, tier_env)


def test_pods_are_hardened_and_have_no_service_links(
    variant: tuple[str, dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, _, objects = variant
    specs = pod_specs(objects)
    assert specs
    for where, spec in specs:
        # Kubernetes would otherwise inject ROUTEIQ_SERVICE_HOST, ROUTEIQ_PORT=tcp://... into every pod.
        assert spec["enableServiceLinks"] is False, where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] != 0, where
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], where
            assert "resources" in container and container["resources"].get("requests"), where


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container["env"]}


def test_gateway_probes_and_grace_period(variant: tuple[str, dict[str, Any], list[dict[str, Any]]]) -> None:
    _, _, objects = variant
    spec = gateway(objects)["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["startupProbe"]["httpGet"]["path"] == "/_health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/_health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/_health/live"
    env = _env(container)
    drain = float(env["ROUTEIQ_DRAIN_TIMEOUT_SECONDS"]["value"])
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] > pre_stop + drain
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/etc/routeiq", "/tmp", "/var/lib/routeiq"} <= mounts


def test_pods_environment_and_config_are_valid_routeiq_settings(
    variant: tuple[str, dict[str, Any], list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The rendered config file and env load through RouteIQ's own settings loader."""
    _, _, objects = variant
    (container,) = gateway(objects)["spec"]["template"]["spec"]["containers"]
    names = {f"ROUTEIQ_{field.upper()}" for field in Settings.model_fields} | {CONFIG_PATH_ENV}
    environ = {"OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "x"}
    for name, item in _env(container).items():
        if name.startswith("ROUTEIQ_"):
            assert name in names, f"{name} is not a RouteIQ setting"
        if name in SECRET_SETTINGS and "valueFrom" not in item:
            # Secrets only by reference: a literal is a bundled store's URL with no password in it,
            # or with the bundled PostgreSQL password composed in from its Secret.
            assert name.endswith("_URL"), name
            assert urlsplit(item["value"]).password in (None, "$(PGPASSWORD)"), name
        value = item.get("value")
        if "valueFrom" in item or value is None:
            value = {
                "ROUTEIQ_DATABASE_URL": "postgresql://u:p@db/routeiq",
                "ROUTEIQ_REDIS_URL": "redis://r:6379/0",
            }.get(name, "secret")
        environ[name] = value.replace("$(PGPASSWORD)", "p")
    (configmap,) = [
        item for item in of_kind(objects, "ConfigMap") if item["metadata"]["name"].endswith("-config")
    ]
    config = tmp_path / "config.yaml"
    config.write_text(configmap["data"]["config.yaml"])
    environ.pop(CONFIG_PATH_ENV)
    settings = load_settings(config, environ=environ)
    assert settings.model_list and settings.port == 4000


def test_config_change_rolls_the_pods() -> None:
    values = tier_values("small")
    annotation = gateway(render(values))["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert annotation == hashlib.sha256(rendered_text(values, "configmap.yaml").encode()).hexdigest()
    changed = copy.deepcopy(values)
    changed["config"]["router_settings"]["num_retries"] = 2
    assert (
        gateway(render(changed))["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        != annotation
    )


@pytest.mark.parametrize("tier", ["small", "production"])
def test_disruption_budget_autoscaling_and_spread(tier: str) -> None:
    objects = render(tier_values(tier))
    pod_labels = gateway(objects)["spec"]["template"]["metadata"]["labels"]
    (pdb,) = of_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (hpa,) = of_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in gateway(objects)["spec"], "the HPA owns the replica count"
    metrics = {metric["type"]: metric for metric in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    if tier == "production":
        assert metrics["Pods"]["pods"]["metric"]["name"] == "routeiq_in_flight_requests"
    spread = gateway(objects)["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {item["topologyKey"] for item in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }


@pytest.mark.parametrize("tier", TIERS)
def test_one_migration_job_instead_of_every_pod_migrating(tier: str) -> None:
    objects = render(tier_values(tier))
    (job,) = of_kind(objects, "Job")
    hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
    assert "pre-upgrade" in hooks
    # Bundled PostgreSQL comes up with the release, so the first migration runs after install.
    bundled = tier_values(tier).get("postgresql", {}).get("bundled", {}).get("enabled", False)
    assert ("post-install" if bundled else "pre-install") in hooks
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["routeiq", "db", "upgrade"]
    assert "ROUTEIQ_DATABASE_URL" in _env(migrate)
    (container,) = gateway(objects)["spec"]["template"]["spec"]["containers"]
    assert _env(container)["ROUTEIQ_DATABASE_MIGRATE_ON_STARTUP"]["value"] == "false"


def test_without_a_database_each_pod_migrates_its_own_sqlite() -> None:
    objects = render({})
    assert of_kind(objects, "Job") == []
    (container,) = gateway(objects)["spec"]["template"]["spec"]["containers"]
    assert "ROUTEIQ_DATABASE_MIGRATE_ON_STARTUP" not in _env(container)


def test_production_uses_external_stores_from_existing_secrets() -> None:
    objects = render(tier_values("production"))
    assert of_kind(objects, "Secret") == [] and of_kind(objects, "StatefulSet") == []
    (container,) = gateway(objects)["spec"]["template"]["spec"]["containers"]
    env = _env(container)
    assert env["ROUTEIQ_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "routeiq-redis",
        "key": "redis-url",
    }
    assert env["ROUTEIQ_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "routeiq-postgresql",
        "key": "database-url",
    }
    assert env["ROUTEIQ_MASTER_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "routeiq-keys"
