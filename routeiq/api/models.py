"""What ``GET /v1/models`` and ``GET /v1/models/{id}`` show: the names a caller can ask for.

That is every routing group the caller's key reaches, plus the profile names (``eco``, ``premium``,
...) when the group they stand for (``profile_group``) is one of those. A group the key may not ask
for, or whose every deployment serves a model the key may not use, is not shown, and retrieving it
is a 404 like any name that does not exist: a key learns nothing about what it cannot use.
"""

from __future__ import annotations

from typing import Any

from routeiq.api.errors import APIError
from routeiq.governance.access import serves_allowed_model
from routeiq.governance.identity import Identity
from routeiq.routing.deployments import DeploymentTable
from routeiq.routing.profiles import PROFILES
from routeiq.settings import Settings


def reachable_groups(identity: Identity, deployments: DeploymentTable) -> list[str]:
    """The groups ``identity`` may ask for and be served by, in configuration order."""
    return [
        group
        for group in deployments.groups
        if (not identity.allowed_groups or group in identity.allowed_groups)
        and any(serves_allowed_model(identity, deployment) for deployment in deployments.group(group))
    ]


def visible_models(identity: Identity, deployments: DeploymentTable, settings: Settings) -> list[str]:
    """Reachable groups, then the profile names that are not groups themselves (they are served by
    ``profile_group``, so they are shown only when that group is reachable)."""
    groups = reachable_groups(identity, deployments)
    profiles = (
        [name for name in PROFILES if not deployments.has_group(name)]
        if settings.profile_group in groups
        else []
    )
    return [*groups, *profiles]


def model_card(model_id: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "routeiq"}


def model_list(identity: Identity, runtime: Any) -> dict[str, Any]:
    names = visible_models(identity, runtime.deployments, runtime.settings)
    return {"object": "list", "data": [model_card(name, runtime.started_at) for name in names]}


def retrieve_model(model_id: str, identity: Identity, runtime: Any) -> dict[str, Any]:
    if model_id not in visible_models(identity, runtime.deployments, runtime.settings):
        raise APIError(404, f"the model {model_id!r} does not exist", param="model", code="model_not_found")
    return model_card(model_id, runtime.started_at)
