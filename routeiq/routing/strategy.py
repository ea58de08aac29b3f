"""The strategy interface: given healthy candidates, pick one deployment and say why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from routeiq.routing.deployments import Deployment


@dataclass(frozen=True, slots=True)
class Decision:
    deployment: Deployment
    strategy: str
    reason: str


@dataclass(slots=True)
class RoutingContext:
    """One request's routing state, shared by every attempt (retries and fallbacks) it makes."""

    request_id: str
    group: str
    body: Mapping[str, Any]
    excluded: set[str] = field(default_factory=set)  # deployments that already failed this request
    decision: Decision | None = None  # the current attempt's pick; LiteLLM's call honours it


class RoutingStrategy(Protocol):
    """Strategies never see unhealthy or excluded deployments and must pick one of the candidates."""

    name: str
    description: str

    def choose(self, candidates: Sequence[Deployment], context: RoutingContext) -> Decision: ...


class NoHealthyDeployment(Exception):
    def __init__(self, group: str, retry_after: float, circuit_open: bool = False) -> None:
        super().__init__(f"no healthy deployment in group {group!r}")
        self.group = group
        self.retry_after = retry_after
        self.circuit_open = circuit_open
