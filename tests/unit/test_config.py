"""Settings precedence and validation: defaults < YAML < environment < command-line flags."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from routeiq.config import ConfigError, load_settings
from routeiq.config_docs import render

ROOT = Path(__file__).resolve().parents[2]

MODEL = {
    "model_name": "auto",
    "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "os.environ/UPSTREAM_KEY"},
}


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_precedence_defaults_yaml_env_cli(tmp_path: Path) -> None:
    path = write(tmp_path, {"routeiq": {"port": 5001, "max_concurrent_requests": 7, "workers": 2}})
    environ = {"ROUTEIQ_PORT": "5002", "ROUTEIQ_WORKERS": "3"}
    settings = load_settings(path, overrides={"workers": 4}, environ=environ)
    assert settings.max_concurrent_requests == 7  # YAML beats the default
    assert settings.port == 5002  # the environment beats YAML
    assert settings.workers == 4  # a flag beats the environment
    assert settings.shed_retry_after_seconds == 1  # untouched default


def test_env_nested_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path, {"router_settings": {"num_retries": 1}})
    environ = {"ROUTEIQ_ROUTER_SETTINGS__NUM_RETRIES": "3"}
    assert load_settings(path, environ=environ).router_settings.num_retries == 3


def test_secret_references_resolve(tmp_path: Path) -> None:
    path = write(tmp_path, {"model_list": [MODEL]})
    settings = load_settings(path, environ={"UPSTREAM_KEY": "sk-secret"})
    assert settings.model_list[0].litellm_params.api_key == "sk-secret"


def test_missing_secret_names_key_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, {"model_list": [MODEL]})
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert (
        str(path) in message
        and "model_list.0.litellm_params.api_key" in message
        and "UPSTREAM_KEY" in message
    )


def test_unknown_routeiq_key_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"routeiq": {"max_concurent_requests": 5}})
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert f"{path}: routeiq.max_concurent_requests" in str(caught.value)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"general_settings": {}})
    with pytest.raises(ConfigError, match="general_settings"):
        load_settings(path, environ={})


def test_invalid_value_names_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"router_settings": {"num_retries": "many"}})
    with pytest.raises(ConfigError, match=r"router_settings\.num_retries"):
        load_settings(path, environ={})


def test_invalid_env_value_names_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable ROUTEIQ_PORT"):
        load_settings(None, environ={"ROUTEIQ_PORT": "not-a-port"})


def test_unknown_env_variable_is_rejected() -> None:
    with pytest.raises(ConfigError, match="ROUTEIQ_MAX_CONCURENT"):
        load_settings(None, environ={"ROUTEIQ_MAX_CONCURENT": "5"})


def test_unknown_strategy_lists_valid_ones(tmp_path: Path) -> None:
    path = write(tmp_path, {"router_settings": {"routing_strategy": "telepathy"}})
    with pytest.raises(ConfigError, match="simple-shuffle"):
        load_settings(path, environ={})


def test_fallbacks_must_name_known_groups(tmp_path: Path) -> None:
    path = write(tmp_path, {"model_list": [MODEL], "router_settings": {"fallbacks": [{"auto": ["nowhere"]}]}})
    with pytest.raises(ConfigError, match="nowhere"):
        load_settings(path, environ={"UPSTREAM_KEY": "k"})


def test_comma_separated_admin_keys() -> None:
    settings = load_settings(None, environ={"ROUTEIQ_ADMIN_KEYS": "a, b"})
    assert [key.get_secret_value() for key in settings.admin_keys] == ["a", "b"]


def test_shipped_configs_are_valid() -> None:
    environ = {"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-y"}
    for name in ("demo.yaml", "example.yaml"):
        assert load_settings(ROOT / "config" / name, environ=environ).model_list


def test_configuration_docs_are_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render(), "docs/configuration.md is stale: run `make docs`"
