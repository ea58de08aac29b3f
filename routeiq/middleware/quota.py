"""Meter model calls against quotas and budgets: reserve before the call, settle after it.

Only model calls (``call.is_model_call``) are metered, and a caller no limit can reach passes
straight through without its body being read. Otherwise the call is reserved against every limit
that applies (one atomic StateStore operation; 429 when any is exhausted), the response carries the
tightest limits' ``x-ratelimit-*`` headers, and once the downstream app returns (streams are
finished by then, or the client went away) the counters are corrected to the real usage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeiq.api.errors import error_response
from routeiq.errors import GatewayError
from routeiq.governance.call import GovernedCall, current_call, load_body
from routeiq.governance.quota import Quotas, Ticket, usage_of
from routeiq.runtime_handle import RuntimeHandle

if TYPE_CHECKING:  # typing only: the runtime module imports LiteLLM
    from routeiq.runtime import Runtime


class QuotaMiddleware:
    def __init__(self, app: ASGIApp, runtime: RuntimeHandle) -> None:
        self.app = app
        self._runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = current_call(scope) if scope["type"] == "http" else None
        if call is None or not call.is_model_call:
            await self.app(scope, receive, send)
            return
        runtime = self._runtime.get()
        quotas = runtime.quotas
        if not quotas.may_apply(call.identity):
            await self.app(scope, receive, send)
            return
        try:
            ticket = await self._reserve(runtime, call, scope, receive)
        except GatewayError as error:
            await error_response(error)(scope, receive, send)
            return
        if ticket is None:
            await self.app(scope, receive, send)
            return
        call.add_headers(quotas.headers(ticket))
        settlement = _Settlement(quotas, ticket, call)
        try:
            await self.app(scope, receive, settlement.wrap(send))
        finally:
            # Also when the client went away or the call failed: tokens never used go back.
            settlement.settle()

    @staticmethod
    async def _reserve(runtime: Runtime, call: GovernedCall, scope: Scope, receive: Receive) -> Ticket | None:
        quotas = runtime.quotas
        body = await load_body(call, scope, receive, runtime.settings.max_request_body_bytes)
        # Group limits count the group that serves the call (``premium``, ``eco``, ``AUTO``... are
        # served by the profile group): the one resolution policy and routing use, made once.
        call.resolve(runtime.deployments, runtime.settings.profile_group)
        limits = quotas.limits_for(call.identity, call.group)
        if not limits:
            return None
        return await quotas.reserve(limits, quotas.estimate(body or {}, call.route, call.group))


class _Settlement:
    """Settles a call's reservation once: just before its response ends, else when the app returns.

    Settling before the last body message goes out means a client's next request already sees this
    one's real usage; by then the dispatcher has filled in the usage, streams included.
    """

    def __init__(self, quotas: Quotas, ticket: Ticket, call: GovernedCall) -> None:
        self._quotas = quotas
        self._ticket = ticket
        self._call = call
        self._status: int | None = None
        self._done = False

    def wrap(self, send: Send) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                self.settle()
            await send(message)

        return sending

    def settle(self) -> None:
        if self._done:
            return
        self._done = True
        call = self._call
        # A successful response means a deployment answered. A stream cut short by the client has
        # filled in the call's usage by now (counted from what it streamed): its response closes
        # the stream before returning. Should nothing have been filled in, the estimate stands.
        served = call.served is not None or (self._status is not None and self._status < 400)
        self._quotas.settle(self._ticket, usage_of(served, call.usage, call.cost_usd))
