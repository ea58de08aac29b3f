"""Load the YAML config file and build ``Settings`` with one precedence.

defaults < YAML file < ``ROUTEIQ_*`` environment < command-line flags.

Every failure is a ``ConfigError`` whose message names the offending key and where it came from
(the file, the environment variable or the flag), so startup and ``routeiq check-config`` can print
it and stop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource, InitSettingsSource

from routeiq.settings import Settings

ENV_PREFIX = "ROUTEIQ_"
# Read by the CLI and the worker factory, not a setting: it says where the settings are.
CONFIG_PATH_ENV = "ROUTEIQ_CONFIG"
LITELLM_SECTIONS = ("model_list", "router_settings", "litellm_settings")
TOP_LEVEL_KEYS = frozenset({*LITELLM_SECTIONS, "routeiq"})
SECRET_REFERENCE = "os.environ/"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and where."""


def load_settings(
    config_path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from a config file, the environment and explicit overrides (CLI flags)."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    source_name = str(config_path) if config_path else "<no config file>"
    file_values = read_config_file(config_path, environ) if config_path else {}
    _reject_unknown_env(environ)
    sources = (
        InitSettingsSource(Settings, overrides),
        _EnvironmentSource(environ),
        InitSettingsSource(Settings, file_values),
    )
    try:
        return Settings(_build_sources=(sources, {}))  # type: ignore[call-arg]  # pydantic-settings init option
    except ValidationError as error:
        raise ConfigError(_describe(error, source_name, overrides, environ)) from None


class _EnvironmentSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading the mapping it is given (tests pass their own)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._environ.items()}  # names are case-insensitive


def read_config_file(path: str | Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The file's values flattened into Settings' shape, with ``os.environ/NAME`` resolved."""
    environ = os.environ if environ is None else environ
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, not {type(document).__name__}")
    unknown = sorted(set(document) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {unknown}; allowed: {sorted(TOP_LEVEL_KEYS)}")
    routeiq_section = document.get("routeiq") or {}
    if not isinstance(routeiq_section, dict):
        raise ConfigError(f"{path}: 'routeiq' must be a mapping")
    values = {key: document[key] for key in LITELLM_SECTIONS if document.get(key) is not None}
    values.update(routeiq_section)
    return _resolve_secrets(values, path, environ, trail=())


def _resolve_secrets(value: Any, path: Path, environ: Mapping[str, str], trail: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {key: _resolve_secrets(item, path, environ, (*trail, str(key))) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_secrets(item, path, environ, (*trail, str(i))) for i, item in enumerate(value)]
    if isinstance(value, str) and value.startswith(SECRET_REFERENCE):
        name = value[len(SECRET_REFERENCE) :]
        if name not in environ:
            raise ConfigError(
                f"{path}: {_yaml_key(trail)} refers to environment variable {name}, which is unset"
            )
        return environ[name]
    return value


def _reject_unknown_env(environ: Mapping[str, str]) -> None:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | {CONFIG_PATH_ENV}
    for name in environ:
        if not name.startswith(ENV_PREFIX):
            continue
        top = name.split("__", 1)[0]
        if top not in known:
            raise ConfigError(f"environment variable {name} is not a RouteIQ setting")


def _describe(
    error: ValidationError, source_name: str, overrides: Mapping[str, Any], environ: Mapping[str, str]
) -> str:
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        field = loc[0] if loc else ""
        if field in overrides:
            where = f"command-line flag --{field.replace('_', '-')}"
        elif any(name.startswith(f"{ENV_PREFIX}{field.upper()}") for name in environ) and field:
            where = f"environment variable {ENV_PREFIX}{'__'.join(loc).upper()}"
        elif field:
            where = f"{source_name}: {_yaml_key(tuple(loc))}"
        else:
            where = source_name
        lines.append(f"{where}: {item['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _yaml_key(trail: tuple[str, ...]) -> str:
    if not trail:
        return "<top level>"
    if trail[0] in TOP_LEVEL_KEYS:
        return ".".join(trail)
    return "routeiq." + ".".join(trail)
