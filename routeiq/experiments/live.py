"""Experiments in the running gateway: definitions applied on every worker, arms assigned on the
request path, outcomes counted cluster-wide, verdicts on demand, guardrails watched.

The definitions are the live subject ``experiments`` (``state.changes``): a change is written to
the durable store first (so a cold restart finds it), then announced; every worker rebuilds its
``group -> running experiment`` map when the change reaches it. The request path costs one dict
lookup for a group without a running experiment.

One worker at a time (whichever holds a short lease in the StateStore) checks the running
experiments every ``CHECK_SECONDS``: it appends a point to each one's estimate series (the UI's
chart) and stops an experiment whose verdict is ``guardrail_stop``. The stop is an ordinary change,
so it reaches every worker and replica like an operator's, and it is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from routeiq.experiments.assignment import ExperimentSplit
from routeiq.experiments.definition import ExperimentDefinition, unit_in_order
from routeiq.experiments.outcomes import ArmCounters, RequestOutcome, arm_key, scaled, summary_of
from routeiq.experiments.verdict import verdict
from routeiq.governance.identity import Identity
from routeiq.periodic import every, stop
from routeiq.routing.registry import StrategyDeps, create_strategy
from routeiq.routing.strategy import RoutingContext, RoutingStrategy
from routeiq.state.base import StateStore
from routeiq.state.changes import Change, ChangeRefused, LiveChanges
from routeiq.store.audit import AuditRepository
from routeiq.store.experiments import ExperimentRepository, Feedback, FeedbackRepository
from routeiq.store.records import AuditRecord

logger = logging.getLogger("routeiq.experiments")

SUBJECT = "experiments"
CHECK_SECONDS = 5.0
SERIES_POINTS = 240  # 20 minutes at one point per check
VERDICT_CACHE_SECONDS = 1.0  # a percentile's bootstrap costs ~100 ms: dashboards poll every 2 s
CHECK_LEASE = "experiments:check"


@dataclass(frozen=True, slots=True)
class LiveArm:
    name: str
    strategy: RoutingStrategy
    profile: str | None  # the arm's routing profile, if it sets one


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A request's place in an experiment: the arm that serves it and the shadow arms to decide."""

    experiment: str
    arm: LiveArm
    shadows: tuple[LiveArm, ...]

    def apply(self, context: RoutingContext) -> None:
        context.arm_strategy = self.arm.strategy
        if self.arm.profile is not None:
            context.profile = self.arm.profile

    def shadow_decisions(self, context: RoutingContext) -> dict[str, dict[str, Any]]:
        """Each shadow arm's pick among the candidates the live arm chose from (never served).
        Each judges the prompt itself: the live arm's assessment is not handed to it."""
        decisions: dict[str, dict[str, Any]] = {}
        for arm in self.shadows:
            shadow_context = replace(
                context, assessment=None, decision=None, profile=arm.profile or context.profile
            )
            try:
                choice = arm.strategy.choose(context.candidates, shadow_context)
            except Exception as error:  # a shadow must never fail the request it watches
                decisions[arm.name] = {"error": type(error).__name__}
                continue
            decisions[arm.name] = {
                "strategy": choice.strategy,
                "deployment": choice.deployment.id,
                "tier": choice.tier or choice.deployment.tier,
                "reason": choice.reason,
            }
        return decisions


@dataclass(frozen=True, slots=True)
class RunningExperiment:
    definition: ExperimentDefinition
    arms: dict[str, LiveArm]
    split: ExperimentSplit  # built once per change: assignment reads it on every request

    def enrol(self, context: RoutingContext, identity: Identity | None) -> Enrolment | None:
        split = self.split
        unit = unit_in_order(
            self.definition.unit,
            team=identity.team if identity is not None else None,
            user=identity.user if identity is not None else None,
            session=context.session_id,
            request_id=context.request_id,
        )
        assignment = split.assign(unit)
        if assignment is None:
            return None
        shadows = tuple(self.arms[name] for name in assignment.shadows if name in self.arms)
        return Enrolment(self.definition.id, self.arms[assignment.arm], shadows)


class UnknownExperiment(LookupError):
    pass


class Experiments:
    """This process's view of every experiment, and the operations on them."""

    def __init__(
        self,
        changes: LiveChanges,
        store: StateStore,
        repository: ExperimentRepository,
        feedback: FeedbackRepository,
        deps: StrategyDeps,
        audit_log: AuditRepository,
        configured: list[dict[str, Any]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._changes = changes
        self._store = store
        self._repository = repository
        self._feedback = feedback
        self._deps = deps
        self._audit_log = audit_log
        self._clock = clock
        self._configured = {str(d["id"]): d for d in configured}  # from the durable store at startup
        self.counters = ArmCounters(store)
        self.definitions: dict[str, ExperimentDefinition] = {}
        self._running: dict[str, RunningExperiment] = {}  # group -> its running experiment
        self._verdicts: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        failures = self._apply(self._configured)
        if failures:
            logger.warning("experiments not running here: %s", "; ".join(failures))
        changes.watch(SUBJECT, self._on_change)

    # --- the request path ---

    def enrol(self, context: RoutingContext, identity: Identity | None) -> Enrolment | None:
        """The request's arm, or None (one dict lookup) when its group runs no experiment."""
        running = self._running.get(context.group)
        if running is None:
            return None
        return running.enrol(context, identity)

    def observe(
        self,
        *,
        experiment: str,
        arm: str,
        requested_group: str | None,
        served_group: str | None,
        tier: str | None,
        error: str | None,
        cost: float | None,
        latency_ms: float | None,
        input_tokens: int,
        output_tokens: int,
        shadow: Mapping[str, Mapping[str, Any]] | None,
        served_deployment: str | None,
    ) -> None:
        """One finished request of an arm (the request ledger calls this after the response)."""
        outcome = RequestOutcome(error, cost, latency_ms, tier, input_tokens, output_tokens)
        self.counters.served(arm_key(experiment, arm), outcome)
        if served_group is not None and requested_group is not None and served_group != requested_group:
            self.counters.add(arm_key(experiment, arm), {"fallbacks": 1})
            self.counters.served(arm_key(experiment, arm, "fallback"), outcome)
        for name, decision in (shadow or {}).items():
            amounts = {"requests": 1}
            if decision.get("tier"):
                amounts[f"tier:{decision['tier']}"] = 1
            if served_deployment is not None and decision.get("deployment") == served_deployment:
                amounts["agrees"] = 1
            if "error" in decision:
                amounts["errors"] = 1
            self.counters.add(arm_key(experiment, name, "shadow"), amounts)

    # --- applying changes ---

    def _on_change(self, change: Change) -> None:
        value = change.value.get("experiments", {}) if change.value is not None else self._configured
        failures = self._apply(value)
        if failures:
            raise ChangeRefused("; ".join(failures))

    def _apply(self, value: Mapping[str, Any]) -> list[str]:
        definitions = {eid: ExperimentDefinition.from_dict(data) for eid, data in value.items()}
        running: dict[str, RunningExperiment] = {}
        failures = []
        for definition in definitions.values():
            if definition.state != "running":
                continue
            try:
                arms = {
                    arm.name: LiveArm(
                        arm.name, create_strategy(arm.strategy, self._deps), arm.params.get("profile")
                    )
                    for arm in definition.arms
                }
            except ValueError as error:
                failures.append(f"{definition.id}: {error}")
                continue
            running[definition.group] = RunningExperiment(definition, arms, definition.split())
        self.definitions, self._running = definitions, running
        self._verdicts.clear()
        return failures

    # --- operations (the admin API) ---

    def get(self, experiment_id: str) -> ExperimentDefinition:
        definition = self.definitions.get(experiment_id)
        if definition is None:
            raise UnknownExperiment(experiment_id)
        return definition

    def active_in(self, group: str) -> ExperimentDefinition | None:
        """The group's running or paused experiment (a group has at most one)."""
        return next((d for d in self.definitions.values() if d.group == group and d.state != "stopped"), None)

    async def put(self, definition: ExperimentDefinition) -> int | None:
        """Store and announce a new or changed definition; returns the change's version."""
        async with self._lock:
            with contextlib.suppress(Exception):  # start from the cluster's newest version, if reachable
                await self._changes.resync()
            previous = self.definitions.get(definition.id)
            await self._repository.put(definition.to_dict())
            wanted = {eid: d.to_dict() for eid, d in self.definitions.items()}
            wanted[definition.id] = definition.to_dict()
            try:
                return await self._changes.publish(SUBJECT, {"experiments": wanted})
            except Exception:
                with contextlib.suppress(Exception):  # not announced: the store goes back too
                    if previous is None:
                        await self._repository.delete(definition.id)
                    else:
                        await self._repository.put(previous.to_dict())
                raise

    async def delete(self, experiment_id: str) -> int | None:
        async with self._lock:
            definition = self.get(experiment_id)
            wanted = {eid: d.to_dict() for eid, d in self.definitions.items() if eid != experiment_id}
            version = await self._changes.publish(SUBJECT, {"experiments": wanted})
            with contextlib.suppress(Exception):
                await self._repository.delete(experiment_id)
            keys = [
                arm_key(experiment_id, a.name, part)
                for a in definition.arms
                for part in ("", "fallback", "shadow")
            ]
            with contextlib.suppress(Exception):
                await self.counters.delete([*keys, _series_key(experiment_id)])
            return version

    async def stop_experiment(
        self, experiment_id: str, reason: str, promoted_arm: str | None = None
    ) -> int | None:
        definition = self.get(experiment_id)
        stopped = replace(
            definition,
            state="stopped",
            stopped_reason=reason,
            promoted_arm=promoted_arm,
            updated_at=self._clock(),
        )
        return await self.put(stopped)

    # --- reading outcomes ---

    async def arm_counters(self, definition: ExperimentDefinition) -> dict[str, dict[str, dict[str, int]]]:
        """Per arm: its counters (``all``), those of requests a fallback served, its shadow decisions."""
        table = {}
        for arm in definition.arms:
            table[arm.name] = {
                part or "all": await self.counters.read(arm_key(definition.id, arm.name, part))
                for part in ("", "fallback", "shadow")
            }
        return table

    async def verdict(self, definition: ExperimentDefinition) -> dict[str, Any] | None:
        """The verdict on the live arms (cached ~1 s per process); None if it cannot be computed."""
        cached = self._verdicts.get(definition.id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < VERDICT_CACHE_SECONDS:
            return cached[1]
        summaries = {
            arm.name: summary_of(await self.counters.read(arm_key(definition.id, arm.name)))
            for arm in definition.live_arms
        }
        try:
            result: dict[str, Any] | None = (
                await asyncio.to_thread(verdict, summaries, definition.design())
            ).to_dict()
        except Exception:  # a design the numbers cannot serve (an extreme alpha, say): no verdict
            logger.warning("experiment %s: no verdict", definition.id, exc_info=True)
            result = None
        self._verdicts[definition.id] = (now, result)
        return result

    async def series(self, experiment_id: str) -> list[dict[str, Any]]:
        record = await self._store.get_record(_series_key(experiment_id))
        points = (record or {}).get("points", [])
        return points if isinstance(points, list) else []

    # --- feedback ---

    async def feedback(self, feedback: Feedback) -> Feedback | None:
        """Store the request's feedback (replacing an earlier one) and move the arm's feedback
        counters by the difference, so a replaced score is not counted twice."""
        previous = await self._feedback.put(feedback)
        amounts: dict[str, dict[str, int]] = {}
        for entry, sign in ((previous, -1), (feedback, 1)):
            if entry is None or entry.experiment not in self.definitions or entry.arm is None:
                continue  # not in an experiment, or in one deleted since (its counters are gone)
            key = arm_key(entry.experiment, entry.arm)
            counts = amounts.setdefault(key, {"feedback_n": 0, "feedback_sum": 0, "feedback_sumsq": 0})
            counts["feedback_n"] += sign
            counts["feedback_sum"] += sign * scaled("feedback_sum", entry.score)
            counts["feedback_sumsq"] += sign * scaled("feedback_sumsq", entry.score * entry.score)
        for key, counts in amounts.items():
            self.counters.add(key, counts)
        await self.counters.flush()
        self._verdicts.clear()
        return previous

    # --- the periodic check ---

    async def start(self) -> None:
        await self.counters.start()
        self._task = every(CHECK_SECONDS, self.check, "experiment check")

    async def close(self) -> None:
        if self._task is not None:
            await stop([self._task])
        await self.counters.close()

    async def check(self) -> None:
        """On the one worker holding the lease: a series point per running experiment, and a stop
        for any whose guardrail tripped."""
        if not any(d.state == "running" for d in self.definitions.values()):
            return
        if not await self._store.set_record_if_absent(
            CHECK_LEASE, {"by": self._changes.instance_id}, CHECK_SECONDS * 0.9
        ):
            return
        for definition in [d for d in self.definitions.values() if d.state == "running"]:
            self._verdicts.pop(definition.id, None)
            result = await self.verdict(definition)
            if result is None:
                continue
            await self._append_point(definition.id, result)
            if result["state"] == "guardrail_stop" and self.definitions.get(definition.id) == definition:
                guardrail = result.get("guardrail") or {}
                reason = f"guardrail: {guardrail.get('arm')} is worse on {guardrail.get('metric')}"
                await self.stop_experiment(definition.id, reason)
                await self._audit_log.write(
                    AuditRecord(
                        actor="system:experiments",
                        action="experiment.stop",
                        outcome="success",
                        at=self._clock(),
                        target=definition.id,
                        details={"reason": reason, "guardrail": guardrail},
                    )
                )
                logger.warning("experiment %s stopped: %s", definition.id, reason)

    async def _append_point(self, experiment_id: str, result: Mapping[str, Any]) -> None:
        points = await self.series(experiment_id)
        arms = {
            name: {"n": estimate["n"], **estimate["interval"]}
            for name, estimate in result["estimates"].items()
        }
        points.append({"at": round(self._clock(), 3), "state": result["state"], "arms": arms})
        await self._store.set_record(_series_key(experiment_id), {"points": points[-SERIES_POINTS:]})


def _series_key(experiment_id: str) -> str:
    return f"experiments:{experiment_id}:series"
