"""compose.yaml: valid against the Compose Specification's JSON schema (vendored in schemas/ with
its licence), and every service, port, volume, file and environment variable it names exists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from routeiq.config import load_settings
from routeiq.settings import Settings
from tests.deploy.dockerfile import parse

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
GATEWAYS = ("routeiq", "routeiq-providers")
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # `<<` merge keys resolved
    return loaded


def _interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set: the default (or empty)."""
    return INTERPOLATION.sub(lambda match: match.group(2) or "", value)


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts.append((source, target))
    return mounts


def _published(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port."""
    return {int(port.split(":")[1]): int(port.split(":")[0]) for port in service.get("ports", [])}


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda error: list(error.path))
    assert errors == [], [f"{list(error.path)}: {error.message}" for error in errors]
    # The schema really constrains services: a misspelt key is an error.
    broken = json.loads(json.dumps(compose))
    broken["services"]["routeiq"]["enviroment"] = {}
    assert list(validator.iter_errors(broken))
    assert (SCHEMA.parent / "compose-spec.LICENSE").read_text().lstrip().startswith("Apache License")


def test_the_quickstart_has_every_part(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {*GATEWAYS, "redis", "postgres", "otel-collector", "prometheus", "grafana"}
    # The default gateway needs no API keys: every deployment of its config is a LiteLLM mock.
    (source,) = [
        source for source, target in _bind_mounts(services["routeiq"]) if target.startswith("/etc/routeiq")
    ]
    demo = yaml.safe_load((ROOT / source).read_text())
    assert all("mock_response" in entry["litellm_params"] for entry in demo["model_list"])
    assert "profiles" not in services["routeiq"]
    assert services["routeiq-providers"]["profiles"] == ["providers"]
    assert services["routeiq-providers"]["env_file"] == [{"path": ".env", "required": True}]
    for name, service in services.items():
        if "profiles" not in service and name != "routeiq-providers":
            assert "providers" not in str(service.get("depends_on", "")), name


def test_every_file_volume_and_dependency_exists(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared_volumes = set(compose.get("volumes", {}))
    for name, service in services.items():
        for source, _ in _bind_mounts(service):
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source}"
            else:
                assert source in declared_volumes, f"{name}: volume {source} not declared"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        if "build" in service:
            assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).exists()


def test_gateway_environment_and_config_are_real_routeiq_settings(compose: dict[str, Any]) -> None:
    image = parse(ROOT / "Dockerfile").final
    config_path = image.env()["ROUTEIQ_CONFIG"]
    known = {f"ROUTEIQ_{field.upper()}" for field in Settings.model_fields}
    for name in GATEWAYS:
        service = compose["services"][name]
        environment = {key: _interpolate(str(value)) for key, value in service["environment"].items()}
        for key in environment:
            if key.startswith("ROUTEIQ_"):
                assert key in known, f"{name}: {key} is not a RouteIQ setting"
        # The gateway listens on the port the image exposes, and compose publishes that one.
        assert Settings.model_fields["port"].default == 4000 == int(image.last("EXPOSE").arguments)  # type: ignore[union-attr]
        assert 4000 in _published(service)
        (source,) = [source for source, target in _bind_mounts(service) if target == config_path]
        environ = {**environment, "OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "x"}
        settings = load_settings(ROOT / source, environ=environ)
        assert settings.model_list, name
        # The stores it names are the compose services, on their images' default ports.
        redis_url = urlsplit(environment["ROUTEIQ_REDIS_URL"])
        assert (redis_url.hostname, redis_url.port) == ("redis", 6379)
        database = urlsplit(environment["ROUTEIQ_DATABASE_URL"])
        assert (database.hostname, database.port) == ("postgres", 5432)
        postgres = {
            key: _interpolate(value) for key, value in compose["services"]["postgres"]["environment"].items()
        }
        assert (database.username, database.password, database.path) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            f"/{postgres['POSTGRES_DB']}",
        )
        otlp = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert otlp.hostname == "otel-collector" and otlp.port in _published(
            compose["services"]["otel-collector"]
        )


def test_provider_keys_the_example_config_needs_are_in_the_env_example() -> None:
    needed = set(re.findall(r"os\.environ/(\w+)", (ROOT / "config" / "example.yaml").read_text()))
    listed = {
        line.split("=")[0].lstrip("# ").strip()
        for line in (ROOT / "deploy/compose.env.example").read_text().splitlines()
        if "=" in line
    }
    assert needed and needed <= listed
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_prometheus_collector_and_grafana_point_at_real_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounted = {target: source for name in services for source, target in _bind_mounts(services[name])}
    prometheus = yaml.safe_load((ROOT / mounted["/etc/prometheus/prometheus.yml"]).read_text())
    collector = yaml.safe_load((ROOT / mounted["/etc/otelcol/config.yaml"]).read_text())
    collector_ports = {
        int(collector["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]),
        *(int(p["endpoint"].rsplit(":", 1)[1]) for p in collector["receivers"]["otlp"]["protocols"].values()),
    }
    for job in prometheus["scrape_configs"]:
        for group in job["static_configs"]:
            for target in group["targets"]:
                host, port = target.rsplit(":", 1)
                assert host in services, target
                expected = (
                    {4000} if host in GATEWAYS else collector_ports if host == "otel-collector" else set()
                )
                assert int(port) in expected, target
    # Every pipeline uses components the collector declares.
    for pipeline in collector["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(kind, [])) <= set(collector[kind]), pipeline
    assert set(_published(services["otel-collector"])) <= collector_ports
    # Grafana: the datasource is the prometheus service; the dashboards folder is the chart's.
    provisioning = ROOT / mounted["/etc/grafana/provisioning"]
    datasource = yaml.safe_load((provisioning / "datasources/prometheus.yaml").read_text())["datasources"][0]
    assert urlsplit(datasource["url"]).hostname == "prometheus" and urlsplit(
        datasource["url"]
    ).port in _published(services["prometheus"])
    provider = yaml.safe_load((provisioning / "dashboards/routeiq.yaml").read_text())["providers"][0]
    dashboards = ROOT / mounted[provider["options"]["path"]]
    assert (dashboards / "routeiq.json").exists()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/routeiq.json"
