"""Experiments and feedback in the durable store, on a SQLite file and on PostgreSQL (migration 0004)."""

from __future__ import annotations

from routeiq.experiments.definition import ArmSpec, ExperimentDefinition
from routeiq.store.database import Database
from routeiq.store.decisions import DecisionRepository
from routeiq.store.experiments import ExperimentRepository, Feedback, FeedbackRepository
from routeiq.store.records import DecisionRecord


async def test_definitions_round_trip_and_replace(db: Database) -> None:
    repository = ExperimentRepository(db)
    arms = (
        ArmSpec("a", "cost-based-routing", 1.0),
        ArmSpec("b", "simple-shuffle", 2.0, params={"profile": "eco"}),
    )
    definition = ExperimentDefinition("exp_1", "auto", arms, "a", weights_history=({"a": 1.0, "b": 2.0},))
    await repository.put(definition.to_dict())
    await repository.put(definition.with_weights({"b": 1.0}, now=5.0).to_dict())
    stored = await repository.all()
    assert [ExperimentDefinition.from_dict(d) for d in stored] == [
        definition.with_weights({"b": 1.0}, now=5.0)
    ]
    await repository.delete("exp_1")
    assert await repository.all() == []


async def test_a_second_feedback_replaces_the_first_and_hands_it_back(db: Database) -> None:
    repository = FeedbackRepository(db)
    first = Feedback("req-1", 1.0, 0.0, None, "k1", "team-a", "exp_1", "a")
    assert await repository.put(first) is None
    second = Feedback("req-1", 2.0, 0.75, "better", "k1", "team-a", "exp_1", "a")
    assert await repository.put(second) == first
    assert await repository.get("req-1") == second


async def test_decision_records_keep_the_arm_and_the_shadow_decisions(db: Database) -> None:
    repository = DecisionRepository(db)
    shadow = {"watcher": {"deployment": "dear", "tier": "premium", "strategy": "least-busy"}}
    record = DecisionRecord(
        request_id="req-2",
        time=1.0,
        route="/v1/chat/completions",
        status=200,
        outcome="served",
        outcome_detail="ok",
        experiment="exp_1",
        arm="a",
        shadow=shadow,
    )
    await repository.write_many([record])
    stored = await repository.get("req-2")
    assert stored is not None
    assert (stored.experiment, stored.arm, stored.shadow) == ("exp_1", "a", shadow)
