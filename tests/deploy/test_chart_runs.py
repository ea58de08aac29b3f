"""The production tier's pods, for real: the migration Job's command with the Job's environment, then
the gateway with the pod's environment and the rendered ConfigMap, against the real PostgreSQL and
Redis on this machine (the Secrets' values stand in for what ``secretKeyRef`` would resolve to)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.chart import gateway, of_kind, render, tier_values
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.gateway import Gateway
from tests.support.redis_store import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url() -> Iterator[str]:
    name, url = create_postgres_database("routeiq_chart")
    try:
        yield url
    finally:
        drop_postgres_database(name)


def _resolve(container: dict[str, Any], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """The container's environment as the kubelet would build it (secretKeyRef from ``secrets``)."""
    env = {}
    for item in container["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[(ref["name"], ref["key"])]
        else:
            env[item["name"]] = item["value"]
    for source in container.get("envFrom", []):
        env.update({"OPENAI_API_KEY": "sk-placeholder", "ANTHROPIC_API_KEY": "sk-placeholder"})
        assert source["secretRef"]["name"] == "routeiq-provider-keys"
    return env


def test_migration_job_then_pods_serve_with_the_rendered_environment(
    database_url: str, tmp_path: Path
) -> None:
    values = tier_values("production")
    values["workers"] = 2  # two, not four, on a shared test machine; the same code path as four
    objects = render(values)
    prefix = f"routeiq-chart-{uuid.uuid4().hex[:8]}:"
    secrets = {
        ("routeiq-keys", "master-key"): "sk-chart-master",
        ("routeiq-keys", "admin-keys"): "sk-chart-admin",
        ("routeiq-redis", "redis-url"): REDIS_URL,
        ("routeiq-postgresql", "database-url"): database_url,
    }
    # The Job first: `routeiq db upgrade` with its environment. ROUTEIQ_CONFIG names the image's
    # bundled file, which is config/demo.yaml.
    (job,) = of_kind(objects, "Job")
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    env = _resolve(migrate, secrets) | {"ROUTEIQ_CONFIG": str(ROOT / "config" / "demo.yaml")}
    env |= {"ROUTEIQ_REDIS_KEY_PREFIX": prefix, "PATH": "/usr/bin:/bin"}
    assert migrate["command"][0] == "routeiq"
    result = subprocess.run(
        [sys.executable, "-m", "routeiq", *migrate["command"][1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "revision" in result.stdout

    # Then a pod: its environment (migrate-on-startup off) and the ConfigMap's config file.
    (container,) = gateway(objects)["spec"]["template"]["spec"]["containers"]
    env = _resolve(container, secrets) | {"ROUTEIQ_REDIS_KEY_PREFIX": prefix}
    assert env["ROUTEIQ_DATABASE_MIGRATE_ON_STARTUP"] == "false"
    env.pop("ROUTEIQ_CONFIG")  # the file is handed over with --config, like the mount
    (configmap,) = [
        item for item in of_kind(objects, "ConfigMap") if item["metadata"]["name"].endswith("-config")
    ]
    config = yaml.safe_load(configmap["data"]["config.yaml"])
    with Gateway(config, tmp_path, env) as pod:
        pod.wait_for_log("Booting worker", 2)
        ready = httpx.get(f"{pod.url}/_health/ready", timeout=5).json()
        assert ready["status"] == "ready", ready
        assert ready["checks"]["database"] == "postgresql"
        assert ready["checks"]["state"] == "ok" and ready["checks"]["classifier"] == "ok", ready
        # The master key from the Secret closes the data plane.
        assert httpx.get(f"{pod.url}/v1/models", timeout=5).status_code == 401
        models = httpx.get(
            f"{pod.url}/v1/models", headers={"authorization": "Bearer sk-chart-master"}, timeout=5
        )
        assert {model["id"] for model in models.json()["data"]} >= {"auto"}
