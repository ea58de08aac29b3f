"""Experiments and request feedback in the durable store.

``experiments``: each experiment's definition, written before a change is announced to the cluster,
so that after a cold restart (Redis emptied, every process new) the experiments come back as they
were. ``request_feedback``: one row per request that got feedback; a second feedback replaces the
first, and ``put`` hands back the one replaced so the arm's counters can be corrected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from routeiq.store.database import Database, unavailable
from routeiq.store.schema import JSONType, metadata

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("group", sa.String(256), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("definition", JSONType, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

request_feedback = sa.Table(
    "request_feedback",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("key_id", sa.String(64)),
    sa.Column("team", sa.String(256)),
    sa.Column("experiment", sa.String(64)),
    sa.Column("arm", sa.String(256)),
    sa.Index("ix_request_feedback_experiment", "experiment"),
)


@dataclass(frozen=True, slots=True)
class Feedback:
    request_id: str
    at: float
    score: float  # 0..1 (thumbs up 1, down 0)
    comment: str | None
    key_id: str | None
    team: str | None
    experiment: str | None
    arm: str | None


class ExperimentRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[dict[str, Any]]:
        """Every stored definition (``ExperimentDefinition.to_dict`` form), oldest first."""
        query = sa.select(experiments.c.definition).order_by(experiments.c.created_at)
        try:
            async with self.db.engine.connect() as connection:
                return [dict(row[0]) for row in (await connection.execute(query)).all()]
        except Exception as error:
            raise unavailable(error) from error

    async def put(self, definition: dict[str, Any]) -> None:
        """Insert or replace one definition."""
        values = {
            "group": definition["group"],
            "state": definition["state"],
            "definition": definition,
            "created_at": definition["created_at"],
            "updated_at": definition["updated_at"],
        }
        try:
            async with self.db.engine.begin() as connection:
                updated = await connection.execute(
                    experiments.update().where(experiments.c.id == definition["id"]).values(**values)
                )
                if updated.rowcount == 0:
                    await connection.execute(experiments.insert().values(id=definition["id"], **values))
        except Exception as error:
            raise unavailable(error) from error

    async def delete(self, experiment_id: str) -> None:
        try:
            async with self.db.engine.begin() as connection:
                await connection.execute(experiments.delete().where(experiments.c.id == experiment_id))
        except Exception as error:
            raise unavailable(error) from error


class FeedbackRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, feedback: Feedback) -> Feedback | None:
        """Store ``feedback`` for its request, replacing any earlier one; returns the one replaced."""
        table = request_feedback
        row = {
            "at": feedback.at,
            "score": feedback.score,
            "comment": feedback.comment,
            "key_id": feedback.key_id,
            "team": feedback.team,
            "experiment": feedback.experiment,
            "arm": feedback.arm,
        }
        try:
            async with self.db.engine.begin() as connection:
                old = (
                    await connection.execute(
                        sa.select(table).where(table.c.request_id == feedback.request_id)
                    )
                ).first()
                if old is None:
                    await connection.execute(table.insert().values(request_id=feedback.request_id, **row))
                    return None
                await connection.execute(
                    table.update().where(table.c.request_id == feedback.request_id).values(**row)
                )
                return Feedback(**old._mapping)
        except Exception as error:
            raise unavailable(error) from error

    async def get(self, request_id: str) -> Feedback | None:
        table = request_feedback
        try:
            async with self.db.engine.connect() as connection:
                row = (
                    await connection.execute(sa.select(table).where(table.c.request_id == request_id))
                ).first()
        except Exception as error:
            raise unavailable(error) from error
        return Feedback(**row._mapping) if row is not None else None
