"""RouteIQ's hook into LiteLLM's Router: the custom routing strategy installed with ``register_plugin``.

(Not to be confused with RouteIQ's own plugins, ``routeiq/plugins``.) LiteLLM asks it for a
deployment on every call it makes. When the call comes from RouteIQ's dispatcher the decision for
this attempt is already made (the executor depends on it), so the hook hands back that deployment;
any other call is decided here by the same ``Picker``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litellm.types.router import CustomRoutingStrategyBase

from routeiq.routing.picker import Picker
from routeiq.routing.strategy import RoutingContext

CONTEXT_KEY = "routeiq_context"


class LiteLLMRoutingHook(CustomRoutingStrategyBase):
    def __init__(self, router: Any, picker: Picker) -> None:
        self._router = router
        self._picker = picker

    async def async_get_available_deployment(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list[object] | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict[str, object] | None = None,
    ) -> Mapping[str, Any]:
        context = _context_from(request_kwargs)
        if context is None:
            body = {"messages": messages} if messages is not None else {"input": input}
            context = RoutingContext(request_id="", group=model, body=body)
        decision = context.decision
        if decision is None or decision.deployment.group != model:
            decision = await self._picker.decide(model, context)
        return self._router.registry().deployment_dict(decision.deployment.id)

    def get_available_deployment(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list[object] | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict[str, object] | None = None,
    ) -> Mapping[str, Any]:
        raise NotImplementedError("RouteIQ routes only through LiteLLM's async API")


def _context_from(request_kwargs: Mapping[str, object] | None) -> RoutingContext | None:
    metadata = (request_kwargs or {}).get("metadata")
    if isinstance(metadata, Mapping):
        context = metadata.get(CONTEXT_KEY)
        if isinstance(context, RoutingContext):
            return context
    return None
