"""Judge every data-plane request against the policy rules, after authentication.

The identity is the one ``AuthMiddleware`` put on the ``GovernedCall`` (from the credential alone:
no client header can change it). A denial is a 403 ``policy_denied`` naming the rule, in the message
and in ``x-routeiq-policy-rule``. Deployments that ``served_model`` rules deny are handed to routing
in ``call.excluded_deployments``. With no policy file configured this layer costs one lookup.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from routeiq.api.errors import POLICY_RULE_HEADER, APIError, error_response
from routeiq.errors import GatewayError, PolicyDenied, PolicyUnavailable
from routeiq.governance.call import GovernedCall, current_call, load_body
from routeiq.governance.policy import (
    PolicyEngine,
    PolicyRequest,
    Verdict,
    candidate_targets,
    groups_of,
    normalise_route,
)
from routeiq.middleware.paths import is_data_plane
from routeiq.routing.deployments import DeploymentTable
from routeiq.runtime_handle import RuntimeHandle
from routeiq.settings import Settings

logger = logging.getLogger("routeiq.policy")

RULE_HEADER = POLICY_RULE_HEADER


def policy_request(call: GovernedCall, groups: tuple[str, ...]) -> PolicyRequest:
    identity = call.identity
    return PolicyRequest(
        team=identity.team,
        user=identity.user,
        key_id=identity.key_id,
        groups=groups,
        route=normalise_route(call.route),
        method=call.method.upper(),
        client_ip=call.client_ip,
    )


def judge_call(
    engine: PolicyEngine, call: GovernedCall, deployments: DeploymentTable, settings: Settings
) -> Verdict:
    target = call.resolve(deployments, settings.profile_group)
    groups = groups_of(target.model, target.group) if target is not None else ()
    return engine.judge(policy_request(call, groups), candidate_targets(groups, deployments, settings))


class PolicyMiddleware:
    def __init__(self, app: ASGIApp, runtime: RuntimeHandle) -> None:
        self.app = app
        self._runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        runtime = self._runtime.get()
        engine = runtime.policy
        # Only the data plane: the control plane, probes, metrics and the API documentation are not
        # governed by policy (routeiq.middleware.paths).
        if engine is None or not is_data_plane(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            verdict = await self._judge(engine, scope, receive, runtime.deployments, runtime.settings)
        except GatewayError as error:
            await error_response(error)(scope, receive, send)
            return
        except Exception:
            # A bug in judging must not become a 500 nor, unless configured so, an open door.
            logger.exception("policy evaluation failed (failure_mode %s)", engine.failure_mode)
            runtime.metrics.policy_failures.labels(engine.failure_mode).inc()
            if engine.failure_mode == "closed":
                await error_response(PolicyUnavailable())(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        decision = verdict.decision
        if not decision.allowed:
            runtime.metrics.policy_denials.labels(decision.rule).inc()
            await error_response(PolicyDenied(decision.rule, decision.reason))(scope, receive, send)
            return
        call = current_call(scope)
        if call is not None:
            call.excluded_deployments |= verdict.excluded
        await self.app(scope, receive, send)

    async def _judge(
        self,
        engine: PolicyEngine,
        scope: Scope,
        receive: Receive,
        deployments: DeploymentTable,
        settings: Settings,
    ) -> Verdict:
        call = current_call(scope)
        if call is None:
            # Auth gives every governed request its call; without one there is no identity to
            # judge, and an unjudged request must not pass.
            raise APIError(401, "this request carries no authenticated identity", code="unauthenticated")
        # The requested model is in the body: read it once here (413/400 as the API would answer).
        await load_body(call, scope, receive, settings.max_request_body_bytes)
        return judge_call(engine, call, deployments, settings)
