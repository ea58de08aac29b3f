"""A config document (the YAML file's shape, as text) checked, compared and shown safely.

What ``/admin/config`` needs before anything is applied: secrets shown as ``***`` and restored from
the running document when submitted back, the changed paths and a unified diff, settings that
cannot change without a restart, and the deeper checks ``check-config`` also runs. Applying a
checked document is ``config_apply.py``'s job.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from routeiq.config import SECRET_REFERENCE, DocumentInvalid, Problem
from routeiq.settings import Settings

REDACTED = "***"

# Settings read once, by what is built before the runtime (the listener, the middleware, the
# traffic gate, the state and database connections): changing them needs a restart, so a document
# that changes their effective value is refused with the path named.
RESTART_ONLY = (
    "host",
    "port",
    "workers",
    "log_level",
    "access_log",
    "master_key",
    "admin_keys",
    "metrics_auth",
    "max_concurrent_requests",
    "queue_timeout_ms",
    "queue_max_depth",
    "shed_retry_after_seconds",
    "cors_allow_origins",
    "drain_timeout_seconds",
    "redis_url",
    "redis_sentinels",
    "redis_sentinel_master",
    "redis_cluster",
    "redis_key_prefix",
    "redis_timeout_seconds",
    "state_failure_mode",
    "data_dir",
    "database_url",
    "database_migrate_on_startup",
    "trace_message_content",
)

_SECRET_WORDS = ("secret", "password", "passwd", "credential", "private", "authorization")


# --- secrets ---------------------------------------------------------------------------------


def is_secret_name(name: str) -> bool:
    """A key whose value may be a credential: ``api_key``, ``master_key``, ``admin_keys``,
    ``aws_secret_access_key``, ``authorization``... (not ``key_cache_seconds``, not a price per token)."""
    name = name.lower()
    if name.endswith(("key", "_keys")) or any(word in name for word in _SECRET_WORDS):
        return True
    return name.endswith("token") and not name.endswith("per_token")


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SECRET_REFERENCE)


def _leaf_is_secret(path: tuple[str | int, ...], value: Any) -> bool:
    if value is None or _is_reference(value):
        return False
    if any(isinstance(part, str) and is_secret_name(part) for part in path):
        return True
    # A URL with a password in it (database_url, redis_url, an api_base with credentials).
    if isinstance(value, str) and "://" in value and "@" in value:
        with contextlib.suppress(ValueError):
            return urlsplit(value).password is not None
    return False


def redact(value: Any, path: tuple[str | int, ...] = ()) -> Any:
    """``value`` (a parsed document or a part of one) with every secret leaf replaced by ``***``."""
    if isinstance(value, dict):
        return {key: redact(item, (*path, str(key))) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, (*path, index)) for index, item in enumerate(value)]
    return REDACTED if _leaf_is_secret(path, value) else value


def parse_document(text: str) -> Any:
    """The document's data (None for an empty one); ``DocumentInvalid`` on a syntax error."""
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise DocumentInvalid([Problem("", f"not valid YAML: {error}", line)]) from None


def redacted_yaml(data: Any) -> str:
    return "" if data is None else yaml.safe_dump(redact(data), sort_keys=False, allow_unicode=True)


def restore_secrets(submitted: Any, current: Any) -> Any:
    """``submitted`` with each ``***`` replaced by the current value at the same place, so a
    document read from ``GET /admin/config`` can be edited and sent back without its secrets.
    Deployments are matched by ``model_info.id`` (else group, model and api_base), plugins by name,
    so reordering a list keeps each secret with its owner. ``DocumentInvalid`` names every ``***``
    with no current value behind it."""
    problems: list[Problem] = []
    restored = _restore(submitted, current, (), problems)
    if problems:
        raise DocumentInvalid(problems)
    return restored


_MISSING = object()


def _restore(value: Any, current: Any, path: tuple[str, ...], problems: list[Problem]) -> Any:
    if isinstance(value, dict):
        mapping = current if isinstance(current, dict) else {}
        return {
            key: _restore(item, mapping.get(key, _MISSING), (*path, str(key)), problems)
            for key, item in value.items()
        }
    if isinstance(value, list):
        here = current if isinstance(current, list) else []
        return [
            _restore(item, _counterpart(item, index, here), (*path, str(index)), problems)
            for index, item in enumerate(value)
        ]
    if value == REDACTED:
        if current is _MISSING or current is None or current == REDACTED or isinstance(current, dict | list):
            where = ".".join(path)
            problems.append(
                Problem(where, f"{REDACTED} stands for the current secret, but there is none here")
            )
            return value
        return current
    return value


def _identity(item: Any) -> tuple[Any, ...] | None:
    if not isinstance(item, dict):
        return None
    info = item.get("model_info")
    if isinstance(info, dict) and info.get("id"):
        return ("id", info["id"])
    params = item.get("litellm_params")
    if "model_name" in item and isinstance(params, dict):
        return ("deployment", item["model_name"], params.get("model"), params.get("api_base"))
    if "name" in item:
        return ("name", item["name"])
    return None


def _counterpart(item: Any, index: int, current: list[Any]) -> Any:
    identity = _identity(item)
    if identity is not None:
        return next((other for other in current if _identity(other) == identity), _MISSING)
    return current[index] if index < len(current) else _MISSING


# --- diff ------------------------------------------------------------------------------------


def _leaves(value: Any, path: tuple[str | int, ...] = ()) -> dict[tuple[str | int, ...], Any]:
    if isinstance(value, dict) and value:
        found: dict[tuple[str | int, ...], Any] = {}
        for key, item in value.items():
            found.update(_leaves(item, (*path, str(key))))
        return found
    if isinstance(value, list) and value:
        found = {}
        for index, item in enumerate(value):
            found.update(_leaves(item, (*path, index)))
        return found
    return {path: value}


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path)


def changed_paths(old: Any, new: Any) -> list[dict[str, Any]]:
    """Each leaf that differs, ``{"path", "old", "new"}`` (secrets shown as ``***``, a changed
    secret still listed); an absent side is None."""
    before, after = _leaves(old if old is not None else {}), _leaves(new if new is not None else {})
    changes = []
    for path in sorted(before.keys() | after.keys(), key=lambda p: [str(part) for part in p]):
        if not path:
            continue
        was, now = before.get(path), after.get(path)
        if was != now:
            changes.append(
                {
                    "path": _dotted(path),
                    "old": REDACTED if _leaf_is_secret(path, was) else was,
                    "new": REDACTED if _leaf_is_secret(path, now) else now,
                }
            )
    return changes


def unified_diff(old: Any, new: Any) -> str:
    lines = difflib.unified_diff(
        redacted_yaml(old).splitlines(keepends=True),
        redacted_yaml(new).splitlines(keepends=True),
        fromfile="current",
        tofile="submitted",
    )
    return "".join(lines)


# --- checks ----------------------------------------------------------------------------------


def restart_problems(running: Settings, wanted: Settings) -> list[Problem]:
    """The settings ``wanted`` changes that only a restart can (``RESTART_ONLY``)."""
    problems = []
    for name in RESTART_ONLY:
        if getattr(running, name) != getattr(wanted, name):
            path = (
                name if name in ("model_list", "router_settings", "litellm_settings") else f"routeiq.{name}"
            )
            problems.append(
                Problem(path, "cannot change while the gateway runs: change the file and restart")
            )
    return problems


_SOURCE_PREFIX = re.compile(r"^(?P<path>(?:routeiq\.)?[A-Za-z_][\w.]*)(?::| refers)")


def deeper_problems(settings: Settings, file_path: Path | None) -> list[Problem]:
    """What valid settings can still get wrong, as ``routeiq check-config`` finds it: the policy
    file, plugins and trained routers they name, and LiteLLM's view of the model_list. Blocking
    (artifacts are loaded): run it in a thread."""
    from routeiq.cli import _check_named_files, _check_with_litellm, _source

    lines = _check_named_files(settings, file_path)
    more, _warnings = _check_with_litellm(settings, file_path, with_router=False)
    prefix = _source(file_path) + ": "
    problems = []
    for line in (*lines, *more):
        text = line.removeprefix(prefix)
        match = _SOURCE_PREFIX.match(text)
        path = match["path"] if match else ""
        problems.append(Problem(path, text.removeprefix(path).lstrip(": ") if path else text))
    return problems


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_text(path: Path | None) -> str:
    return path.read_text(encoding="utf-8") if path is not None else ""


def problem_dicts(problems: Iterable[Problem]) -> list[dict[str, Any]]:
    return [{"path": p.path, "message": p.message, "line": p.line} for p in problems]
