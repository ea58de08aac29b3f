"""Admin: the configuration, read (secrets redacted), checked, compared and applied live.

``PUT /admin/config`` changes every worker and replica without a restart (``routeiq.config_apply``);
a document with any problem is refused whole with 400, ``param`` the first problem's path and
``errors`` every one, and the running config keeps serving.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from routeiq.api.errors import APIError, error_body
from routeiq.api.runtime import runtime_handle, runtime_of
from routeiq.config import DocumentInvalid, Problem
from routeiq.config_apply import SUBJECT, ApplyFailed, ConfigApplier
from routeiq.config_document import (
    changed_paths,
    parse_document,
    problem_dicts,
    redact,
    redacted_yaml,
    restore_secrets,
    unified_diff,
)
from routeiq.governance.call import current_call
from routeiq.state.base import StateUnavailable
from routeiq.store.database import StoreUnavailable

router = APIRouter(prefix="/admin/config", tags=["admin"])


class ConfigDocument(BaseModel):
    yaml: str = Field(description="A config document: the YAML config file's shape, as text.")


class ConfigError(BaseModel):
    path: str = Field(description="Where in the document: `routeiq.port`, `model_list.0.litellm_params`.")
    message: str
    line: int | None = Field(default=None, description="For YAML syntax errors: the line (from 1).")


class ConfigView(BaseModel):
    version: int = Field(description="Config history version served (0: the file, never applied).")
    source: str = Field(description="`file` (the config file) or `applied` (PUT or hot reload).")
    yaml: str = Field(description="The document served, secrets as `***`.")
    config: dict[str, Any] = Field(description="The same document as JSON.")
    hot_reload: bool = Field(description="Whether a change of the config file is applied by itself.")
    change_version: int = Field(description="The `config` subject's version this worker applied.")


class Validation(BaseModel):
    valid: bool
    errors: list[ConfigError]


class ConfigChange(BaseModel):
    path: str
    old: Any = None
    new: Any = None


class ConfigDiff(BaseModel):
    diff: str = Field(description="Unified diff of the redacted current and submitted documents.")
    changes: list[ConfigChange]
    errors: list[ConfigError]


class ConfigApplied(BaseModel):
    version: int = Field(description="The config history version given to the document.")
    applied: bool
    change_version: int | None = Field(
        description="The `config` subject's version: wait for it in GET /admin/changes."
    )


def _applier(request: Request) -> ConfigApplier:
    applier = runtime_handle(request).config
    if applier is None:  # only before the lifespan finished starting
        raise APIError(503, "the gateway is starting", code="not_ready")
    return applier


@router.get("", response_model=ConfigView)
async def get_config(request: Request) -> dict[str, Any]:
    """The config document this worker serves, secrets redacted."""
    applier = _applier(request)
    data = parse_document(applier.current.document)
    return {
        "version": applier.current.version,
        "source": applier.current.source,
        "yaml": redacted_yaml(data),
        "config": _as_json(redact(data)) if isinstance(data, dict) else {},
        "hot_reload": applier.hot_reload,
        "change_version": runtime_of(request).state.changes.applied().get(SUBJECT, 0),
    }


@router.post("/validate", response_model=Validation)
async def validate(document: ConfigDocument, request: Request) -> dict[str, Any]:
    """Every problem ``PUT`` would refuse the document for, each with its path; nothing changes."""
    try:
        await _applier(request).check(document.yaml)
    except DocumentInvalid as invalid:
        return {"valid": False, "errors": problem_dicts(invalid.problems)}
    return {"valid": True, "errors": []}


@router.post("/diff", response_model=ConfigDiff)
async def diff(document: ConfigDocument, request: Request) -> dict[str, Any]:
    """What the document would change against the one served (secrets as ``***``), and its
    problems (the quick checks: syntax, settings, secrets, restart-only settings)."""
    applier = _applier(request)
    current = parse_document(applier.current.document)
    errors: list[Problem] = []
    try:
        submitted = restore_secrets(parse_document(document.yaml), current)
    except DocumentInvalid as invalid:
        return {"diff": "", "changes": [], "errors": problem_dicts(invalid.problems)}
    try:
        applier.settings_of(document.yaml)
    except DocumentInvalid as invalid:
        errors = invalid.problems
    return {
        "diff": unified_diff(current, submitted),
        "changes": changed_paths(current, submitted),
        "errors": problem_dicts(errors),
    }


@router.put("", response_model=ConfigApplied)
async def put_config(document: ConfigDocument, request: Request) -> Any:
    """Apply the document on every worker and replica (audited); refused whole if invalid."""
    applier = _applier(request)
    runtime = runtime_of(request)
    current = parse_document(applier.current.document)
    try:
        changes = changed_paths(current, restore_secrets(parse_document(document.yaml), current))
    except DocumentInvalid:
        changes = []  # refused below, with every problem
    details: dict[str, Any] = {"changed": [change["path"] for change in changes][:200]}
    async with runtime.audit.action(request, "config.apply", "config", details) as entry:
        try:
            call = current_call(request.scope)
            actor = call.identity.actor if call is not None else "unknown"
            applied = await applier.apply(document.yaml, actor)
        except DocumentInvalid as invalid:
            entry.details["errors"] = problem_dicts(invalid.problems)[:20]
            response = _refusal(invalid.problems)
            raise _Refused(response) from None
        except StateUnavailable as error:
            raise APIError(503, f"not applied anywhere: {error}", code="state_unavailable") from None
        except StoreUnavailable as error:
            raise APIError(503, f"not applied anywhere: {error}", code="store_unavailable") from None
        except ApplyFailed as error:
            raise APIError(
                500, f"announced, but not applied on this worker: {error}", code="config_not_applied"
            ) from None
        entry.details["version"] = applied.version
    return {"version": applied.version, "applied": True, "change_version": applied.change_version}


def _as_json(data: dict[str, Any]) -> dict[str, Any]:
    """YAML allows what JSON does not (keys that are numbers, dates): the JSON form of it."""
    converted: dict[str, Any] = orjson.loads(orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS))
    return converted


class _Refused(APIError):
    """A 400 whose body carries every problem (``errors``) beside the envelope's first one."""

    def __init__(self, response: Response) -> None:
        super().__init__(400, "invalid config", code="invalid_config")
        self.response = response

    def to_response(self) -> Response:
        return self.response


def _refusal(problems: list[Problem]) -> Response:
    first = problems[0] if problems else Problem("", "invalid config")
    message = f"{first.path}: {first.message}" if first.path else first.message
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s): see errors)"
    body = error_body(message, "invalid_request_error", "invalid_config", first.path or None)
    body["errors"] = problem_dicts(problems)
    return Response(orjson.dumps(body), status_code=400, media_type="application/json")
