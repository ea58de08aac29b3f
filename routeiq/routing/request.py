"""Turn an API request into a routing context: which group, which profile, which session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routeiq.errors import UnknownModel, UnknownProfile
from routeiq.routing.affinity import SESSION_HEADER, session_id_of
from routeiq.routing.deployments import DeploymentTable
from routeiq.routing.profiles import PROFILE_HEADER, PROFILES, Target, requested_profile, resolve_target
from routeiq.routing.strategy import RoutingContext
from routeiq.settings import Settings


def routing_context(
    body: dict[str, Any],
    headers: Mapping[str, str],
    request_id: str,
    deployments: DeploymentTable,
    settings: Settings,
    target: Target | None = None,
) -> RoutingContext:
    """404 for an unknown group; a profile name as the model means ``profile_group`` with that profile.

    ``target`` is the call's resolution of ``body["model"]`` (the one policy and quotas used), when
    the governance layers made it; otherwise it is resolved here, the same way."""
    model = str(body["model"])
    if target is None or target.model != model:
        target = resolve_target(model, deployments, settings.profile_group)
    if target.group is None:
        raise UnknownModel(model, deployments.groups)
    profile = requested_profile(body, headers.get(PROFILE_HEADER), target) or "auto"
    if profile not in PROFILES:
        raise UnknownProfile(profile, list(PROFILES))
    return RoutingContext(
        request_id=request_id,
        group=target.group,
        body=body,
        profile=profile,
        session_id=session_id_of(body, headers.get(SESSION_HEADER)),
    )
