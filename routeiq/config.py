"""Load the YAML config file and build ``Settings`` with one precedence.

defaults < YAML file < ``ROUTEIQ_*`` environment < command-line flags.

Every failure is a ``ConfigError`` listing *every* problem found (not just the first), each naming
the offending key and where it came from (the file, the environment variable or the flag), in
RouteIQ's words rather than pydantic's, so startup and ``routeiq check-config`` can print it and stop.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import EnvSettingsSource, InitSettingsSource

from routeiq.settings import Settings, did_you_mean

ENV_PREFIX = "ROUTEIQ_"
# Read by the CLI and the worker factory, not a setting: it says where the settings are.
CONFIG_PATH_ENV = "ROUTEIQ_CONFIG"
LITELLM_SECTIONS = ("model_list", "router_settings", "litellm_settings")
TOP_LEVEL_KEYS = frozenset({*LITELLM_SECTIONS, "routeiq"})
SECRET_REFERENCE = "os.environ/"
# Paths in the file that are relative to the file's own directory (not the working directory).
FILE_RELATIVE_DIRECTORIES = ("classifier_dir",)
FILE_RELATIVE_DIRECTORY_MAPS = ("learned_routers",)

# Kubernetes injects "service links" for every Service in the namespace into every pod: a Service
# named `routeiq` (or `routeiq-x`) gives ROUTEIQ_SERVICE_HOST, ROUTEIQ_PORT=tcp://10.0.0.1:4000,
# ROUTEIQ_PORT_4000_TCP_ADDR... They are not settings; rejecting them would crash-loop the pod.
_SERVICE_LINK_NAME = re.compile(
    r"^ROUTEIQ_(?:[A-Z0-9_]+_)?(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?"
    r"|PORT_\d+_(?:TCP|UDP|SCTP)(?:_PROTO|_PORT|_ADDR)?)$"
)
_SERVICE_LINK_ADDRESS = re.compile(r"^(?:tcp|udp|sctp)://[^\s/]+:\d+$")
_SERVICE_LINK_PORT_NAME = re.compile(r"^ROUTEIQ_(?:[A-Z0-9_]+_)?PORT$")


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key(s) and where.

    ``partial`` holds the settings sections that are valid on their own (the rest at defaults), so
    ``check-config`` can go on to check the policy file, plugins and routers they name and still
    report every problem in one run."""

    def __init__(self, problems: str | Iterable[str], partial: Settings | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.partial = partial
        super().__init__(format_problems(self.problems))


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config document, where it is: ``path`` in the document's own terms
    (``routeiq.port``, ``model_list.0.litellm_params.model``; ``""`` for the whole document),
    ``line`` for YAML syntax errors."""

    path: str
    message: str
    line: int | None = None
    separator: str = ": "  # between the path and the message, when written as one line

    def text(self, source: str) -> str:
        if not self.path:
            return f"{source}: {self.message}"
        return f"{source}: {self.path}{self.separator}{self.message}"


class DocumentInvalid(Exception):
    """A config document (``PUT /admin/config``) cannot be used; ``problems`` says every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(format_problems([problem.text("config") for problem in problems]))


def format_problems(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    lines = (problem.replace("\n", "\n    ") for problem in problems)  # a problem's own details, indented
    return f"invalid configuration ({len(problems)} problems):\n  " + "\n  ".join(lines)


def is_kubernetes_service_link(name: str, value: str) -> bool:
    """An environment variable Kubernetes injected for a Service, not one a user set."""
    if _SERVICE_LINK_NAME.match(name):
        return True
    # ROUTEIQ_PORT is also the port setting: only its `tcp://host:port` form is Kubernetes'.
    return bool(_SERVICE_LINK_PORT_NAME.match(name) and _SERVICE_LINK_ADDRESS.match(value.strip()))


def settings_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment as settings see it: Kubernetes service links removed."""
    return {
        name: value
        for name, value in environ.items()
        if not (name.upper().startswith(ENV_PREFIX) and is_kubernetes_service_link(name.upper(), value))
    }


def load_settings(
    config_path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from a config file, the environment and explicit overrides (CLI flags).

    Raises one ``ConfigError`` with every problem found in the file, the environment and the flags."""
    environ = settings_environment(os.environ if environ is None else environ)
    overrides = dict(overrides or {})
    source_name = str(config_path) if config_path else "<no config file>"
    problems: list[str] = []
    file_values = _read_config_file(Path(config_path), environ, problems) if config_path else {}
    problems.extend(_unknown_env(environ))
    sources = (
        InitSettingsSource(Settings, overrides),
        _EnvironmentSource(environ),
        InitSettingsSource(Settings, file_values),
    )
    try:
        settings = Settings(_build_sources=(sources, {}))  # type: ignore[call-arg]  # pydantic-settings init option
    except ValidationError as error:
        problems.extend(_describe(error, source_name, overrides, environ))
        raise ConfigError(problems, _valid_sections(sources, error)) from None
    if problems:
        raise ConfigError(problems, settings)
    return settings


def settings_from_document(text: str, base_dir: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from a config document given as text (``PUT /admin/config``), with the startup
    precedence: the document in the file's place, under the same ``ROUTEIQ_*`` environment (which
    holds the command-line flags too: ``routeiq serve`` hands them to its workers there).
    Raises ``DocumentInvalid`` with every problem, each with its path in the document."""
    environ = settings_environment(os.environ if environ is None else environ)
    problems: list[Problem] = []
    file_values = document_values(text, base_dir, environ, problems)
    sources = (_EnvironmentSource(environ), InitSettingsSource(Settings, file_values))
    try:
        settings = Settings(_build_sources=(sources, {}))  # type: ignore[call-arg]  # pydantic-settings init option
    except ValidationError as error:
        raise DocumentInvalid(problems + _located(error, environ)) from None
    if problems:
        raise DocumentInvalid(problems)
    return settings


def _located(error: ValidationError, environ: Mapping[str, str]) -> list[Problem]:
    """pydantic's errors in RouteIQ's words, each at its path in the document (or naming the
    environment variable that set the value)."""
    env_names = {name.upper() for name in environ}
    problems = []
    for item in error.errors():
        loc = tuple(str(part) for part in item["loc"])
        env_name = _env_name(loc, env_names) if loc else None
        for message in _message(item):
            unknown = _UNKNOWN_KEY_MESSAGE.match(message)
            if env_name:
                problems.append(Problem(f"environment variable {env_name}", message))
            elif unknown and loc:
                problems.append(
                    Problem(f"{_yaml_key(loc)}.{unknown['key']}", f"unknown key{unknown['rest']}")
                )
            elif loc:
                problems.append(Problem(_yaml_key(loc), message))
            else:  # a check across sections: its message names the place first ("quotas.groups names ...")
                problems.append(Problem(_leading_path(message), message))
    return problems


_LEADING_PATH = re.compile(r"^(?P<path>[A-Za-z_][\w.]*)[: ]")


def _leading_path(message: str) -> str:
    match = _LEADING_PATH.match(message)
    if match is None:
        return ""
    path = match["path"]
    if path.split(".", 1)[0] in Settings.model_fields:
        return _yaml_key(tuple(path.split(".")))
    return ""


# Sections whose own checks (files, plugins, artifacts) can run while other sections are invalid.
SECTIONS_CHECKED_ALONE = ("policy", "plugins", "learned_routers", "router_hmac_key", "model_list")


def _valid_sections(sources: Iterable[Any], error: ValidationError) -> Settings | None:
    """Settings with each of ``SECTIONS_CHECKED_ALONE`` that validates on its own; defaults elsewhere."""
    failed = {str(item["loc"][0]) for item in error.errors() if item["loc"]}
    merged: dict[str, Any] = {}
    for source in reversed(tuple(sources)):  # lowest precedence first
        try:
            merged = _deep_merge(merged, source())
        except Exception:  # a source that cannot even be read was reported already
            return None
    valid: dict[str, Any] = {}
    for name in SECTIONS_CHECKED_ALONE:
        if name in failed or name not in merged:
            continue
        field = Settings.model_fields[name]
        form: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
        try:
            valid[name] = TypeAdapter(form).validate_python(merged[name])
        except ValidationError:
            continue
    return Settings.model_construct(**valid)


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class _EnvironmentSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading the mapping it is given (tests pass their own)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._environ.items()}  # names are case-insensitive


def read_config_file(path: str | Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The file's values flattened into Settings' shape, with ``os.environ/NAME`` resolved."""
    problems: list[str] = []
    values = _read_config_file(Path(path), os.environ if environ is None else environ, problems)
    if problems:
        raise ConfigError(problems)
    return values


def _read_config_file(path: Path, environ: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """Like ``read_config_file``, adding what is wrong to ``problems`` and going on where it can."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        problems.append(f"{path}: cannot read config file: {error.strerror}")
        return {}
    found: list[Problem] = []
    values = document_values(text, path.resolve().parent, environ, found)
    problems.extend(problem.text(str(path)) for problem in found)
    return values


def document_values(
    text: str, base_dir: Path, environ: Mapping[str, str], problems: list[Problem]
) -> dict[str, Any]:
    """A config document's values flattened into Settings' shape (``os.environ/NAME`` resolved,
    directories relative to ``base_dir``), adding what is wrong to ``problems``."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problems.append(Problem("", f"not valid YAML: {error}", mark.line + 1 if mark is not None else None))
        return {}
    if document is None:
        return {}
    if not isinstance(document, dict):
        problems.append(Problem("", f"the top level must be a mapping, not {type(document).__name__}"))
        return {}
    for key in sorted(set(document) - TOP_LEVEL_KEYS, key=str):
        problems.append(
            Problem(
                str(key),
                f"unknown top-level key{did_you_mean(str(key), TOP_LEVEL_KEYS)}; "
                f"allowed: {', '.join(sorted(TOP_LEVEL_KEYS))}",
            )
        )
    routeiq_section = document.get("routeiq") or {}
    if not isinstance(routeiq_section, dict):
        problems.append(Problem("routeiq", "must be a mapping of settings"))
        routeiq_section = {}
    values = {key: document[key] for key in LITELLM_SECTIONS if document.get(key) is not None}
    values.update(routeiq_section)
    _resolve_relative_paths(values, base_dir)
    return _resolve_secrets(values, environ, (), problems)


def _resolve_relative_paths(values: dict[str, Any], base: Path) -> None:
    """Directories named in the file are relative to the file, wherever ``serve`` is started from."""

    def resolve(value: Any) -> Any:
        if isinstance(value, str) and value and not value.startswith(SECRET_REFERENCE):
            candidate = Path(value).expanduser()
            return value if candidate.is_absolute() else str(base / candidate)
        return value

    for key in FILE_RELATIVE_DIRECTORIES:
        if key in values:
            values[key] = resolve(values[key])
    for key in FILE_RELATIVE_DIRECTORY_MAPS:
        if isinstance(values.get(key), dict):
            values[key] = {name: resolve(value) for name, value in values[key].items()}


def _resolve_secrets(
    value: Any, environ: Mapping[str, str], trail: tuple[str, ...], problems: list[Problem]
) -> Any:
    if isinstance(value, dict):
        return {
            key: _resolve_secrets(item, environ, (*trail, str(key)), problems) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_resolve_secrets(item, environ, (*trail, str(i)), problems) for i, item in enumerate(value)]
    if isinstance(value, str) and value.startswith(SECRET_REFERENCE):
        name = value[len(SECRET_REFERENCE) :]
        if name not in environ:
            message = f"refers to environment variable {name}, which is unset"
            problems.append(Problem(_yaml_key(trail), message, separator=" "))
            return value  # left as written, so the rest of the file is still checked
        return environ[name]
    return value


def _known_env_names() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields} | {CONFIG_PATH_ENV}


def _unknown_env(environ: Mapping[str, str]) -> list[str]:
    known = _known_env_names()
    problems = []
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        top = name.upper().split("__", 1)[0]
        if top not in known:
            problems.append(
                f"environment variable {name}: not a RouteIQ setting{did_you_mean(top, known, cutoff=0.8)}"
            )
    return problems


def _describe(
    error: ValidationError, source_name: str, overrides: Mapping[str, Any], environ: Mapping[str, str]
) -> list[str]:
    lines: list[str] = []
    env_names = {name.upper() for name in environ}
    for item in error.errors():
        loc = tuple(str(part) for part in item["loc"])
        field = loc[0] if loc else ""
        if field in overrides:
            where = f"command-line flag --{field.replace('_', '-')}"
        elif field and (env_name := _env_name(loc, env_names)):
            where = f"environment variable {env_name}"
        elif field:
            where = f"{source_name}: {_yaml_key(loc)}"
        else:
            where = source_name
        for message in _message(item):
            # A model's own check of its extra keys names the key in the message: move it into
            # the location, so it reads like every other unknown key.
            unknown = _UNKNOWN_KEY_MESSAGE.match(message)
            if unknown and field and not where.startswith("environment"):
                lines.append(f"{where}.{unknown['key']}: unknown key{unknown['rest']}")
            else:
                lines.append(f"{where}: {message}")
    return lines


_UNKNOWN_KEY_MESSAGE = re.compile(r"^unknown key '(?P<key>[^']+)'(?P<rest>.*)$")


def _env_name(loc: tuple[str, ...], env_names: set[str]) -> str | None:
    """The environment variable that set the value at ``loc``, if one did."""
    for length in range(len(loc), 0, -1):
        name = ENV_PREFIX + "__".join(loc[:length]).upper()
        if name in env_names:
            return name
    return None


def _message(item: ErrorDetails) -> list[str]:
    """pydantic's error in RouteIQ's words; a cross-field check may carry several, one per line."""
    kind = item["type"]
    context = item.get("ctx") or {}
    value = item.get("input")
    loc = tuple(item["loc"])
    if kind == "extra_forbidden":
        return [f"unknown key{did_you_mean(str(loc[-1]), _keys_at(loc[:-1]))}"]
    if kind == "missing":
        return ["required, but missing"]
    if kind == "value_error":
        return str(context.get("error", item["msg"])).splitlines() or [item["msg"]]
    if kind == "literal_error":
        return [f"{_shown(value, loc)} is not one of {context.get('expected')}"]
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return [f"expected a whole number, got {_shown(value, loc)}"]
    if kind in ("float_parsing", "float_type"):
        return [f"expected a number, got {_shown(value, loc)}"]
    if kind in ("bool_parsing", "bool_type"):
        return [f"expected true or false, got {_shown(value, loc)}"]
    if kind in ("string_type",):
        return [f"expected text, got {_shown(value, loc)}"]
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return [f"expected a mapping of keys, got {type(value).__name__}"]
    if kind == "list_type":
        return [f"expected a list, got {type(value).__name__}"]
    bounds = {
        "greater_than": "more than",
        "greater_than_equal": "at least",
        "less_than": "less than",
        "less_than_equal": "at most",
    }
    if kind in bounds:
        limit = next(iter(context.values()), "?")
        return [f"must be {bounds[kind]} {limit}, got {_shown(value, loc)}"]
    if kind == "string_too_short":
        return ["must not be empty"]
    return [str(item["msg"])]


def _shown(value: Any, loc: tuple[Any, ...]) -> str:
    """A value for an error message, unless the key may hold a secret."""
    if any(_may_be_secret(str(part).lower()) for part in loc):
        return "a value of that kind"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _may_be_secret(name: str) -> bool:
    if any(word in name for word in ("key", "url", "secret", "password", "credential", "auth")):
        return True
    return name.endswith("token") and "cost" not in name  # a price per token is no secret


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed in the mapping at ``loc`` (for "did you mean"), walking the settings model."""
    model: Any = Settings
    for part in loc:
        if isinstance(part, int) or str(part).isdigit():
            continue  # a list index: the item type was taken when the list field was entered
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        model = _item_model(model.model_fields[str(part)].annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _item_model(annotation: Any) -> Any:
    """The model inside ``X``, ``X | None``, ``list[X]`` or ``dict[str, X]``."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        for inner in typing.get_args(candidate):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def _yaml_key(trail: tuple[str, ...]) -> str:
    if not trail:
        return "<top level>"
    if trail[0] in TOP_LEVEL_KEYS:
        return ".".join(trail)
    return "routeiq." + ".".join(trail)
