"""A usage limit: how much of one metric a subject may use in one window.

Limits attach to virtual keys (``/admin/keys``), to teams and users (``routeiq.quotas``), and to
routing groups as global limits. The quota middleware enforces them all in the StateStore.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Metric = Literal["requests", "input_tokens", "output_tokens", "total_tokens", "spend_usd"]
WindowName = Literal["minute", "hour", "day", "month"]

METRICS: tuple[Metric, ...] = ("requests", "input_tokens", "output_tokens", "total_tokens", "spend_usd")

# Spend is counted in micro-dollars so that every StateStore counter stays an integer.
MICRO_USD_PER_USD = 1_000_000
# Bounds that keep every counter a 64-bit integer and refuse values no operator means: a budget of
# 1e308 USD is a typo, and overflowed every call it applied to.
MAX_BUDGET_USD = 1e9
MAX_COUNT_LIMIT = 10**12


class Limit(BaseModel):
    """At most ``limit`` of ``metric`` per ``window`` (spend in USD; the rest are counts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Metric = Field(description="requests, input_tokens, output_tokens, total_tokens or spend_usd.")
    window: WindowName = Field(description="minute, hour, day or month (calendar month, UTC).")
    limit: float = Field(ge=0, allow_inf_nan=False, description="The most allowed in one window.")

    @model_validator(mode="after")
    def _within_counter_range(self) -> Limit:
        most = MAX_BUDGET_USD if self.is_budget else MAX_COUNT_LIMIT
        if self.limit > most:
            raise ValueError(f"a {self.metric} limit must be at most {most:g}")
        return self

    @property
    def is_budget(self) -> bool:
        """Spend limits are budgets: waiting for the window helps less than a top-up."""
        return self.metric == "spend_usd"


class QuotaSettings(BaseModel):
    """Limits configured in YAML: per team, per user, and global per routing group."""

    model_config = ConfigDict(extra="forbid")

    teams: dict[str, list[Limit]] = Field(default_factory=dict, description="{team: [limit, ...]}")
    users: dict[str, list[Limit]] = Field(default_factory=dict, description="{user: [limit, ...]}")
    groups: dict[str, list[Limit]] = Field(
        default_factory=dict, description="Global limits per routing group, for all callers together."
    )
    default_max_tokens: int = Field(
        default=1024,
        ge=1,
        description=(
            "Output tokens reserved (and, for budgets, priced at the dearest deployment the call may"
            " reach) for a call that sets no max_tokens; settled to the real usage afterwards."
        ),
    )
