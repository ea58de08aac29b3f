"""The cost tracker: live totals of what served calls cost, by key, team, user and group.

Counters in the shared StateStore (hashes ``spend:key:<id>``, ``spend:team:<t>``, ``spend:user:<u>``,
``spend:group:<g>``, ``spend:deployment:<id>`` and ``spend:total`` with fields ``micro_usd``,
``input_tokens``, ``output_tokens`` and ``requests``), across every worker. The durable spend log
is not this plugin's: the request ledger (``routeiq.observability.ledger``) writes one row for
every served request whether or not the tracker is on.

Off the request path: counters are summed in the worker and added to the store every
``flush_seconds`` (kept and retried while the store is unreachable).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from routeiq.governance.call import GovernedCall
from routeiq.plugins.base import CallResult, Plugin, PluginHealth, PluginServices
from routeiq.state.counters import SharedCounters

logger = logging.getLogger("routeiq.plugins.cost")

MICRO = 1_000_000


class CostSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flush_seconds: float = Field(default=0.5, gt=0, description="How often counters go to the StateStore.")


def _tokens(usage: dict[str, Any] | None, field: str) -> int:
    value = (usage or {}).get(field)
    return int(value) if isinstance(value, int | float) else 0


def spend_keys(call: GovernedCall) -> list[str]:
    """The counters one call is charged to."""
    assert call.served is not None
    identity = call.identity
    keys = [
        f"spend:group:{call.served.group}",
        f"spend:deployment:{call.served.deployment_id}",
        "spend:total",
    ]
    if identity.key_id:
        keys.append(f"spend:key:{identity.key_id}")
    if identity.team:
        keys.append(f"spend:team:{identity.team}")
    if identity.user:
        keys.append(f"spend:user:{identity.user}")
    return keys


class CostTracker(Plugin[CostSettings]):
    name = "cost_tracker"
    version = "1.0.0"
    priority = 1000  # after every guardrail: only what was actually served is charged
    settings_model = CostSettings
    waits_only_in_run_cpu = True

    def __init__(self, settings: CostSettings) -> None:
        super().__init__(settings)
        self._counters: SharedCounters | None = None  # the store comes with the services, at startup

    async def startup(self, services: PluginServices) -> None:
        self._counters = SharedCounters(services.state, self.settings.flush_seconds, "spend counters flush")
        await self._counters.start()

    async def shutdown(self) -> None:
        if self._counters is not None:
            await self._counters.close()

    async def health(self) -> PluginHealth:
        if self._counters is not None and self._counters.failing:
            waiting = self._counters.waiting
            return PluginHealth("degraded", f"state store unreachable; {waiting} counters waiting")
        return PluginHealth()

    async def post_call(self, call: GovernedCall, result: CallResult) -> None:
        if call.served is None:
            return  # nothing answered (or not a model call): nothing to charge
        input_tokens = _tokens(call.usage, "prompt_tokens")
        output_tokens = _tokens(call.usage, "completion_tokens")
        cost = call.cost_usd or 0.0
        amounts = {
            "micro_usd": round(cost * MICRO),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "requests": 1,
        }
        if self._counters is not None:
            for key in spend_keys(call):
                self._counters.add(key, amounts)

    async def flush(self) -> None:
        if self._counters is not None:
            await self._counters.flush()
