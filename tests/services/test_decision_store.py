"""The decision store against real databases: every test runs on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa

from routeiq.store.database import Database
from routeiq.store.decisions import (
    BadCursor,
    DecisionFilters,
    DecisionRepository,
    DecisionRetention,
    decode_cursor,
    encode_cursor,
)
from routeiq.store.records import DecisionRecord


def record(at: float, request_id: str, **fields: Any) -> DecisionRecord:
    values: dict[str, Any] = {
        "request_id": request_id,
        "time": at,
        "route": "/v1/chat/completions",
        "status": 200,
        "outcome": "served",
        "outcome_detail": "ok",
        "group": "auto",
        "strategy": "simple-shuffle",
        "tier": "budget",
        "served_model": "mock-alpha",
        "deployment": "alpha",
        "candidates": [{"deployment": "alpha", "model": "mock-alpha", "score": 0.5, "chosen": True}],
        "attempted": [{"deployment": "alpha", "group": "auto", "status": 200, "error_code": None}],
        "attempts": 1,
        "latency_ms": 12.5,
    }
    values.update(fields)
    return DecisionRecord(**values)


async def walk(repository: DecisionRepository, filters: DecisionFilters, limit: int) -> list[DecisionRecord]:
    seen: list[DecisionRecord] = []
    cursor = None
    while True:
        page, cursor = await repository.page(filters, limit, cursor)
        assert len(page) <= limit
        seen += page
        if cursor is None:
            return seen


async def test_write_get_and_every_field_round_trips(db: Database) -> None:
    repository = DecisionRepository(db)
    written = record(
        1000.25,
        "req-1",
        fallbacks=["backup"],
        skipped={"other": "not tried"},
        assessment={"category": "code", "p_strong": 0.7, "confidence": 0.4, "scorer": "centroid"},
        prompt="hello",
        key_id="k1",
        team="search",
        user="ana",
        input_tokens=3,
        output_tokens=4,
        cost_usd=0.01,
        routing_overhead_ms=0.4,
    )
    await repository.write_many([written])
    found = await repository.get("req-1")
    assert found is not None and found.id is not None
    found.id = None
    assert found == written
    assert await repository.get("unknown") is None
    # Stored as JSON, not as a string holding JSON (rows go in pre-serialised).
    typeof = "jsonb_typeof" if db.backend == "postgresql" else "json_type"
    async with db.engine.connect() as connection:
        stored = await connection.execute(
            sa.text(f"SELECT {typeof}(candidates), {typeof}(skipped) FROM routing_decisions")
        )
        assert tuple(stored.one()) == ("array", "object")


async def test_pages_walk_newest_first_without_duplicates_even_on_equal_times(db: Database) -> None:
    repository = DecisionRepository(db)
    # Three records share each timestamp: the id breaks the tie, so no page boundary loses one.
    records = [record(1000.0 + i // 3, f"req-{i}") for i in range(40)]
    await repository.write_many(records[:20])
    await repository.write_many(records[20:])
    seen = await walk(repository, DecisionFilters(), 7)
    assert len(seen) == 40 and len({r.id for r in seen}) == 40
    keys = [(r.time, r.id or 0) for r in seen]
    assert keys == sorted(keys, reverse=True)

    # A page stays put while newer records arrive.
    first, cursor = await repository.page(DecisionFilters(), 5)
    await repository.write_many([record(5000.0, "req-newer")])
    second, _ = await repository.page(DecisionFilters(), 5, cursor)
    assert [r.request_id for r in first + second] == [r.request_id for r in seen[:10]]


async def test_filters_and_time_range(db: Database) -> None:
    repository = DecisionRepository(db)
    await repository.write_many(
        [
            record(100.0, "a", group="auto", key_id="k1", team="t1"),
            record(200.0, "b", group="other", tier="premium", served_model="mock-beta"),
            record(300.0, "c", outcome="failed", strategy="cost-based-routing", team="t1"),
            record(400.0, "d", outcome="refused", group=None, tier=None, served_model=None),
            record(500.0, "a", group="auto"),  # the same client request id again
        ]
    )

    async def ids(**filters: Any) -> list[str]:
        return [
            r.request_id + str(int(r.time)) for r in await walk(repository, DecisionFilters(**filters), 2)
        ]

    assert await ids(group="auto") == ["a500", "c300", "a100"]
    assert await ids(tier="premium") == ["b200"]
    assert await ids(served_model="mock-beta") == ["b200"]
    assert await ids(strategy="cost-based-routing") == ["c300"]
    assert await ids(key_id="k1") == ["a100"]
    assert await ids(team="t1") == ["c300", "a100"]
    assert await ids(outcome="refused") == ["d400"]
    assert await ids(request_id="a") == ["a500", "a100"]
    assert await ids(since=200.0, until=400.0) == ["c300", "b200"]
    assert await ids(group="auto", team="t1", since=150.0) == ["c300"]
    newest = await repository.get("a")
    assert newest is not None and newest.time == 500.0


async def test_a_cursor_it_did_not_hand_out_is_refused(db: Database) -> None:
    repository = DecisionRepository(db)
    assert await repository.page(DecisionFilters(), 5, encode_cursor(1.0, 2)) == ([], None)
    for bad in ("x", "!!!", "é", encode_cursor(1.0, -1), "bnVsbA", "WyJhIiwxXQ", "WzEsMiwzXQ"):
        with pytest.raises(BadCursor):
            await repository.page(DecisionFilters(), 5, bad)


async def test_delete_older_than_in_batches(db: Database) -> None:
    repository = DecisionRepository(db)
    await repository.write_many([record(float(i), f"req-{i}") for i in range(25)])
    assert await repository.delete_older_than(20.0, batch=6) == 20
    left = await walk(repository, DecisionFilters(), 100)
    assert [r.time for r in left] == [24.0, 23.0, 22.0, 21.0, 20.0]
    assert await repository.delete_older_than(20.0) == 0


async def test_filtered_pages_are_index_range_scans(db: Database) -> None:
    """Each filter has an index leading with it and ending in the page order: no sort, no scan."""
    repository = DecisionRepository(db)
    now = time.time()
    await repository.write_many([record(now - i, f"req-{i}", team=f"t{i % 50}") for i in range(2000)])
    _, cursor = await repository.page(DecisionFilters(team="t7"), 2)
    assert cursor is not None
    at, row_id = decode_cursor(cursor)
    # The query the repository runs, explained.
    query = (
        "SELECT * FROM routing_decisions WHERE team = :team AND at <= :at AND (at < :at OR id < :id) "
        "ORDER BY at DESC, id DESC LIMIT 3"
    )
    params = {"team": "t7", "at": at, "id": row_id}
    async with db.engine.connect() as connection:
        if db.backend == "sqlite":
            plan = " ".join(
                str(row[-1])
                for row in await connection.execute(sa.text("EXPLAIN QUERY PLAN " + query), params)
            )
            assert "ix_routing_decisions_team_at_id" in plan and "TEMP B-TREE" not in plan, plan
        else:
            await connection.execute(sa.text("ANALYZE routing_decisions"))
            plan = " ".join(
                str(row[0]) for row in await connection.execute(sa.text("EXPLAIN " + query), params)
            )
            assert "ix_routing_decisions_team_at_id" in plan and "Sort" not in plan, plan


async def test_retention_deletes_only_records_past_its_days(db: Database) -> None:
    repository = DecisionRepository(db)
    now = time.time()
    await repository.write_many([record(now - 3 * 86_400, "old"), record(now - 3600, "recent")])
    assert await DecisionRetention(repository, days=2).prune() == 1
    assert [r.request_id for r in await walk(repository, DecisionFilters(), 10)] == ["recent"]
