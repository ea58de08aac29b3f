"""The strategy interface: given healthy candidates, pick one deployment and say why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from routeiq.routing.deployments import Deployment
from routeiq.routing.signals import Signals, read_signals


@dataclass(frozen=True, slots=True)
class Assessment:
    """How demanding a prompt is, as a tier-aware strategy judged it."""

    p_strong: float  # 0..1: how strongly it needs the strong tier
    category: str
    confidence: float
    scorer: str  # which model judged: "centroid", "knn", ... or "length-rule" when degraded
    complex: bool  # the scorer's verdict: needs the strong tier
    borderline: bool  # a close call (already resolved to complex, the safer side)


@dataclass(frozen=True, slots=True)
class RoutingChoice:
    """A strategy's pick for one attempt: the deployment, which strategy chose it, and why."""

    deployment: Deployment
    strategy: str
    reason: str
    tier: str | None = None  # the tier a tier-aware strategy asked for
    assessment: Assessment | None = None
    # What the strategy ranked the candidates by, per deployment id, when it ranks them (cost per
    # token, in-flight requests, latency...; lowest wins). The decision store shows it.
    scores: Mapping[str, float] | None = None


@dataclass(slots=True)
class RoutingContext:
    """One request's routing state, shared by every attempt (retries and fallbacks) it makes."""

    request_id: str
    group: str
    body: Mapping[str, Any]
    excluded: set[str] = field(default_factory=set)  # deployments that already failed this request
    decision: RoutingChoice | None = None  # the current attempt's pick; LiteLLM's call honours it
    profile: str = "auto"
    session_id: str | None = None
    session_floor: str | None = None  # the highest tier this session has reached
    assessment: Assessment | None = None  # judged once per request, reused on retries
    candidates: Sequence[Deployment] = ()  # what the current attempt's strategy chose from
    # An experiment arm's strategy: it decides in the requested group instead of the group's own.
    arm_strategy: RoutingStrategy | None = None
    _signals: Signals | None = None

    @property
    def signals(self) -> Signals:
        if self._signals is None:
            self._signals = read_signals(self.body)
        return self._signals


class RoutingStrategy(Protocol):
    """Strategies never see unhealthy or excluded deployments and must pick one of the candidates."""

    name: str
    description: str

    def choose(self, candidates: Sequence[Deployment], context: RoutingContext) -> RoutingChoice: ...


class NoHealthyDeployment(Exception):
    def __init__(self, group: str, retry_after: float, circuit_open: bool = False) -> None:
        super().__init__(f"no healthy deployment in group {group!r}")
        self.group = group
        self.retry_after = retry_after
        self.circuit_open = circuit_open
