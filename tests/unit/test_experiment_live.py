"""The gateway side of experiments in one process: definitions applied as live changes, arms
assigned, outcomes counted, feedback replaced rather than double counted, guardrails stopping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from routeiq.experiments.assignment import InvalidExperiment
from routeiq.experiments.definition import ArmSpec, ExperimentDefinition, unit_in_order, validate
from routeiq.experiments.live import Experiments
from routeiq.experiments.outcomes import RequestOutcome, arm_key, summary_of
from routeiq.governance.identity import Identity
from routeiq.routing.load import LoadTracker
from routeiq.routing.registry import StrategyDeps
from routeiq.routing.scoring import CentroidScorer
from routeiq.routing.strategy import RoutingContext
from routeiq.state.changes import LiveChanges
from routeiq.state.memory import MemoryStateStore
from routeiq.store.experiments import Feedback
from routeiq.store.records import AuditRecord


class Definitions:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def all(self) -> list[dict[str, Any]]:
        return list(self.rows.values())

    async def put(self, definition: dict[str, Any]) -> None:
        self.rows[definition["id"]] = definition

    async def delete(self, experiment_id: str) -> None:
        self.rows.pop(experiment_id, None)


class Feedbacks:
    def __init__(self) -> None:
        self.rows: dict[str, Feedback] = {}

    async def put(self, feedback: Feedback) -> Feedback | None:
        previous = self.rows.get(feedback.request_id)
        self.rows[feedback.request_id] = feedback
        return previous


class Audit:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    async def write(self, record: AuditRecord) -> int:
        self.records.append(record)
        return len(self.records)


def definition(**changes: Any) -> ExperimentDefinition:
    arms = (
        ArmSpec("control", "cost-based-routing", 1.0),
        ArmSpec("challenger", "simple-shuffle", 1.0),
        ArmSpec("watcher", "least-busy", 0.0, shadow=True),
    )
    values: dict[str, Any] = {
        "id": "exp_t",
        "group": "auto",
        "arms": arms,
        "control": "control",
        "primary": "error_rate",
        "min_samples_per_arm": 50,
    }
    values.update(changes)
    return ExperimentDefinition(**values)


@pytest.fixture
async def experiments() -> AsyncIterator[Experiments]:
    store = MemoryStateStore()
    deps = StrategyDeps(centroid=CentroidScorer(None), load=LoadTracker())
    changes = LiveChanges(store, "test", resync_seconds=3600)
    live = Experiments(changes, store, Definitions(), Feedbacks(), deps, Audit(), [])  # type: ignore[arg-type]
    await changes.start()
    yield live
    await changes.close()


def context(request_id: str, session: str | None = None, group: str = "auto") -> RoutingContext:
    return RoutingContext(request_id=request_id, group=group, body={}, session_id=session)


def test_validation_names_the_field() -> None:
    with pytest.raises(InvalidExperiment) as error:
        validate(definition(arms=(ArmSpec("a", "simple-shuffle", 1.0),)))
    assert error.value.param == "arms"
    with pytest.raises(InvalidExperiment) as error:
        validate(definition(), arm_groups=[None, "elsewhere", None])
    assert error.value.param == "arms[1].group"
    with pytest.raises(InvalidExperiment) as error:
        validate(definition(control="watcher"))
    assert error.value.param == "control"


def test_the_unit_follows_the_experiments_order() -> None:
    values = {"team": "t", "user": "u", "session": "s", "request_id": "r"}
    assert unit_in_order(("team", "user", "session", "request"), **values).kind == "team"
    assert unit_in_order(("session", "request"), **values).kind == "session"
    assert unit_in_order(("user",), team="t", user=None, session=None, request_id="r").kind == "request"


async def test_assignment_is_sticky_and_pausing_stops_it(experiments: Experiments) -> None:
    assert experiments.enrol(context("r1"), None) is None  # no experiment: nothing to do
    await experiments.put(definition())
    team = Identity("virtual_key", key_id="k", team="team-a")
    arms = {experiments.enrol(context(f"r{i}"), team).arm.name for i in range(20)}  # type: ignore[union-attr]
    assert len(arms) == 1  # the team is the unit
    by_request = {experiments.enrol(context(f"r{i}"), None).arm.name for i in range(200)}  # type: ignore[union-attr]
    assert by_request == {"control", "challenger"}
    enrolment = experiments.enrol(context("r1"), None)
    assert enrolment is not None and [arm.name for arm in enrolment.shadows] == ["watcher"]
    assert experiments.enrol(context("r1", group="other"), None) is None
    await experiments.put(definition(state="paused"))
    assert experiments.enrol(context("r1"), None) is None


async def test_outcomes_count_fallbacks_apart_and_feedback_is_replaced(experiments: Experiments) -> None:
    await experiments.put(definition())
    served = {"tier": "budget", "cost": 0.002, "latency_ms": 120.0, "input_tokens": 5, "output_tokens": 7}
    common = {"experiment": "exp_t", "arm": "control", "requested_group": "auto", "shadow": None}
    experiments.observe(**common, served_group="auto", error=None, served_deployment="d1", **served)
    experiments.observe(**common, served_group="backup", error=None, served_deployment="d2", **served)
    failed = {**served, "cost": None, "tier": None}
    experiments.observe(**common, served_group=None, error="upstream_error", served_deployment=None, **failed)
    table = await experiments.arm_counters(experiments.get("exp_t"))
    everything, fallback = table["control"]["all"], table["control"]["fallback"]
    assert (everything["requests"], everything["errors"], everything["fallbacks"]) == (3, 1, 1)
    assert everything["error:upstream_error"] == 1 and everything["tier:budget"] == 2
    assert summary_of(everything).cost.mean == pytest.approx(0.002)
    assert fallback["requests"] == 1

    for score in (0.0, 0.75):
        await experiments.feedback(Feedback("req", 1.0, score, None, "k", None, "exp_t", "control"))
    feedback = summary_of(await experiments.counters.read(arm_key("exp_t", "control"))).feedback
    assert (feedback.n, feedback.mean) == (1, pytest.approx(0.75))


async def test_a_tripped_guardrail_stops_the_experiment_once(experiments: Experiments) -> None:
    await experiments.put(definition())
    ok = RequestOutcome(None, 0.001, 100.0, "budget", 1, 1)
    broken = RequestOutcome("upstream_error", None, 100.0, None, 1, 1)
    for index in range(400):
        experiments.counters.served(arm_key("exp_t", "control"), ok)
        experiments.counters.served(arm_key("exp_t", "challenger"), broken if index % 2 else ok)
    await experiments.check()
    stopped = experiments.get("exp_t")
    assert stopped.state == "stopped" and "guardrail" in (stopped.stopped_reason or "")
    assert experiments.enrol(context("r1"), None) is None
    audit: Audit = experiments._audit_log  # type: ignore[assignment]
    assert [record.action for record in audit.records] == ["experiment.stop"]
    series = await experiments.series("exp_t")
    assert series[-1]["state"] == "guardrail_stop"


async def test_after_a_cold_restart_the_databases_definitions_run() -> None:
    """An empty shared state (Redis flushed, every process new): what the database kept applies."""
    store = MemoryStateStore()
    deps = StrategyDeps(centroid=CentroidScorer(None), load=LoadTracker())
    changes = LiveChanges(store, "fresh", resync_seconds=3600)
    stored = [definition().to_dict()]
    live = Experiments(changes, store, Definitions(), Feedbacks(), deps, Audit(), stored)  # type: ignore[arg-type]
    await changes.start()
    try:
        enrolment = live.enrol(context("r1"), None)
        assert enrolment is not None and enrolment.experiment == "exp_t"
    finally:
        await changes.close()
