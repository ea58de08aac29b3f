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


def test_model_list_typos_are_errors_all_at_once(tmp_path: Path) -> None:
    """`teir`, `tier: premum` and a negative price used to pass, moving the deployment to standard."""
    path = write(
        tmp_path,
        {
            "model_list": [
                {
                    "model_name": "auto",
                    "litellm_params": {"model": "openai/a"},
                    "model_info": {"teir": "premium"},
                },
                {
                    "model_name": "auto",
                    "litellm_params": {"model": "openai/b"},
                    "model_info": {"tier": "premum"},
                },
                {
                    "model_name": "auto",
                    "litellm_params": {"model": "openai/c"},
                    "model_info": {"input_cost_per_token": -1, "supports_vision": "maybe"},
                },
            ]
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    problems = caught.value.problems
    assert f"{path}: model_list.0.model_info.teir: unknown key (did you mean 'tier'?)" in problems
    assert any(
        p.startswith(f"{path}: model_list.1.model_info.tier: unknown tier 'premum' (did you mean 'premium'?)")
        for p in problems
    )
    assert f"{path}: model_list.2.model_info.input_cost_per_token: must be at least 0.0, got -1" in problems
    assert any(
        p.startswith(f"{path}: model_list.2.model_info.supports_vision: expected true or false")
        for p in problems
    )
    assert len(problems) == 4


def test_every_problem_at_once_in_routeiq_words(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "general_settings": {},
            "router_settings": {"num_retrys": 2},
            "routeiq": {"max_concurent_requests": 5, "port": "lots", "log_level": "loud"},
        },
    )
    environ = {"ROUTEIQ_MASTERKEY": "sk-x", "ROUTEIQ_WORKERS": "0"}
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=environ)
    message = str(caught.value)
    for expected in (
        f"{path}: general_settings: unknown top-level key",
        f"{path}: router_settings.num_retrys: unknown key (did you mean 'num_retries'?)",
        f"{path}: routeiq.max_concurent_requests: unknown key (did you mean 'max_concurrent_requests'?)",
        f"{path}: routeiq.port: expected a whole number, got 'lots'",
        f"{path}: routeiq.log_level: 'loud' is not one of",
        "environment variable ROUTEIQ_MASTERKEY: not a RouteIQ setting (did you mean 'ROUTEIQ_MASTER_KEY'?)",
        "environment variable ROUTEIQ_WORKERS: must be at least 1, got '0'",
    ):
        assert expected in message, message
    assert len(caught.value.problems) == 7
    assert "Extra inputs are not permitted" not in message and "Input should be" not in message


def test_cross_field_problems_are_all_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "model_list": [MODEL],
            "router_settings": {
                "fallbacks": [{"auto": ["nowhere"]}],
                "group_strategies": {"autoo": "simple-shuffle"},
            },
            "routeiq": {"quotas": {"groups": {"elsewhere": []}}},
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"UPSTREAM_KEY": "k"})
    message = str(caught.value)
    assert "'nowhere'" in message and "'autoo' (did you mean 'auto'?)" in message and "'elsewhere'" in message


def test_missing_secrets_do_not_hide_other_problems(tmp_path: Path) -> None:
    path = write(tmp_path, {"model_list": [MODEL], "routeiq": {"port": 0}})
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert "UPSTREAM_KEY" in message and f"{path}: routeiq.port: must be at least 1, got 0" in message


KUBERNETES_SERVICE_LINKS = {
    "ROUTEIQ_SERVICE_HOST": "10.0.0.1",
    "ROUTEIQ_SERVICE_PORT": "4000",
    "ROUTEIQ_SERVICE_PORT_HTTP": "4000",
    "ROUTEIQ_PORT": "tcp://10.0.0.1:4000",
    "ROUTEIQ_PORT_4000_TCP": "tcp://10.0.0.1:4000",
    "ROUTEIQ_PORT_4000_TCP_PROTO": "tcp",
    "ROUTEIQ_PORT_4000_TCP_PORT": "4000",
    "ROUTEIQ_PORT_4000_TCP_ADDR": "10.0.0.1",
    # A second Service, `routeiq-metrics`, in the same namespace.
    "ROUTEIQ_METRICS_SERVICE_HOST": "10.0.0.2",
    "ROUTEIQ_METRICS_PORT": "tcp://10.0.0.2:9090",
    "ROUTEIQ_METRICS_PORT_9090_TCP_ADDR": "10.0.0.2",
}


def test_kubernetes_service_links_are_not_settings(tmp_path: Path) -> None:
    """A Service named `routeiq` injects these into every pod; they used to stop startup."""
    path = write(tmp_path, {"routeiq": {"port": 5001}})
    settings = load_settings(path, environ=KUBERNETES_SERVICE_LINKS)
    assert settings.port == 5001  # ROUTEIQ_PORT=tcp://... is not read as the port
    assert load_settings(None, environ=KUBERNETES_SERVICE_LINKS).port == 4000
    # A real ROUTEIQ_PORT still counts, and a real typo beside the links is still caught.
    assert load_settings(path, environ={**KUBERNETES_SERVICE_LINKS, "ROUTEIQ_PORT": "5002"}).port == 5002
    with pytest.raises(ConfigError, match="ROUTEIQ_MASTERKEY"):
        load_settings(path, environ={**KUBERNETES_SERVICE_LINKS, "ROUTEIQ_MASTERKEY": "x"})


@pytest.mark.parametrize(
    "url", ["localhost:6379", "htp://localhost:6379", "redis://localhost:sixty", "redis://"]
)
def test_malformed_redis_url_names_the_variable_not_the_secret(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"ROUTEIQ_REDIS_URL": url.replace("://", "://:hunter2@", 1)})
    message = str(caught.value)
    assert message.startswith("environment variable ROUTEIQ_REDIS_URL: not a")
    assert "hunter2" not in message


def test_valid_redis_urls_pass() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://:pw@cache.example:6380", "unix:///run/redis.sock"):
        assert load_settings(None, environ={"ROUTEIQ_REDIS_URL": url}).redis_url == url


def test_relative_directories_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    path = config_dir / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {"routeiq": {"learned_routers": {"knn": "artifacts/knn"}, "classifier_dir": "classifier"}}
        )
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(Path("..") / "conf" / "config.yaml", environ={})
    assert settings.learned_routers["knn"] == str(config_dir / "artifacts" / "knn")
    assert settings.classifier_dir == str(config_dir / "classifier")
    absolute = str(tmp_path / "abs")
    path.write_text(yaml.safe_dump({"routeiq": {"learned_routers": {"knn": absolute}}}))
    assert load_settings(path, environ={}).learned_routers["knn"] == absolute


def test_unknown_model_list_keys_checked_against_litellm() -> None:
    from routeiq.routing.deployments import config_key_problems
    from routeiq.settings import DeploymentConfig

    entries = [
        DeploymentConfig.model_validate(
            {
                "model_name": "auto",
                "litellm_params": {
                    "model": "openai/a",
                    "api_bsae": "http://x/v1",
                    "rpm": 10,
                    "extra_headers": {},
                },
                "model_info": {"input_cost_per_tokn": 1e-6, "max_output_tokens": 10, "base_model": "gpt-4o"},
            }
        ),
        DeploymentConfig.model_validate(
            {"model_name": "auto", "litellm_params": {"model": "openai/b"}, "model_info": {"frobnicate": 1}}
        ),
    ]
    check = config_key_problems(entries, "cfg.yaml")
    assert check.warnings == [
        "cfg.yaml: model_list.0.litellm_params.api_bsae: not a key LiteLLM knows (did you mean 'api_base'?)",
        "cfg.yaml: model_list.1.model_info.frobnicate: not a key RouteIQ or LiteLLM knows",
    ]
    assert check.errors == [
        "cfg.yaml: model_list.0.model_info.input_cost_per_tokn: unknown key"
        " (did you mean 'input_cost_per_token'?)"
    ]


def test_sentinel_settings_are_checked_before_serving() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"ROUTEIQ_REDIS_SENTINELS": "sentinel-a:26379,sentinel-b"})
    assert str(caught.value) == (
        "environment variable ROUTEIQ_REDIS_SENTINELS: sentinel address must be host:port, got 'sentinel-b'"
    )
    with pytest.raises(ConfigError, match="redis_sentinels needs redis_sentinel_master"):
        load_settings(None, environ={"ROUTEIQ_REDIS_SENTINELS": "sentinel-a:26379"})
    settings = load_settings(
        None, environ={"ROUTEIQ_REDIS_SENTINELS": "a:26379, b:26379", "ROUTEIQ_REDIS_SENTINEL_MASTER": "main"}
    )
    assert settings.redis_sentinels == ["a:26379", "b:26379"]
