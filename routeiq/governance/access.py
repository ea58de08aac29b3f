"""A virtual key's own reach: the groups it may ask for and the models it may be served by.

Checked once the requested model is resolved to a routing group (profiles included). Deployments a
key may not use are excluded before the strategy runs, the same way policy exclusions are, so a
fallback never quietly serves a model the key was not given; and fallback groups outside the key's
``allowed_groups`` are never tried (``reachable_fallbacks``).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from routeiq.errors import ModelNotAllowed
from routeiq.governance.call import GovernedCall
from routeiq.governance.identity import Identity
from routeiq.routing.deployments import Deployment, DeploymentTable


def serves_allowed_model(identity: Identity, deployment: Deployment) -> bool:
    """Whether ``deployment`` serves a model the key's ``allowed_models`` patterns admit."""
    if not identity.allowed_models:
        return True
    served_as = (deployment.litellm_model, deployment.upstream_model)
    return any(fnmatchcase(model, pattern) for model in served_as for pattern in identity.allowed_models)


def enforce_key_scope(
    call: GovernedCall, group: str, fallbacks: list[str], deployments: DeploymentTable
) -> None:
    identity = call.identity
    if identity.allowed_groups and group not in identity.allowed_groups:
        raise ModelNotAllowed(f"this key may not use {group!r}; allowed: {list(identity.allowed_groups)}")
    if not identity.allowed_models:
        return
    for name in (group, *fallbacks):
        for deployment in deployments.group(name):
            if not serves_allowed_model(identity, deployment):
                call.excluded_deployments.add(deployment.id)
    if all(deployment.id in call.excluded_deployments for deployment in deployments.group(group)):
        raise ModelNotAllowed(
            f"no deployment of {group!r} serves a model this key may use ({list(identity.allowed_models)})"
        )


def reachable_fallbacks(call: GovernedCall | None, fallbacks: list[str]) -> tuple[list[str], list[str]]:
    """The fallback groups this caller may be served by, and those left out (its ``allowed_groups``)."""
    allowed = call.identity.allowed_groups if call is not None else None
    if not allowed:
        return list(fallbacks), []
    return [g for g in fallbacks if g in allowed], [g for g in fallbacks if g not in allowed]
