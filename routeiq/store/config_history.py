"""The config history: each config document applied to the cluster, newest last.

``routeiq.config_apply`` writes a row before it announces a document and reads the newest one at
startup. ``file_sha256`` is the sha256 of the config file the applying process was started with:
at startup the newest applied document is used only while the file is still that one (a new file,
deployed on purpose, wins over what was applied to the old one).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from routeiq.store.database import Database, unavailable
from routeiq.store.schema import IdType, metadata

config_history = sa.Table(
    "config_history",
    metadata,
    sa.Column("id", IdType, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),  # api (PUT /admin/config) or file (hot reload)
    sa.Column("document", sa.Text, nullable=False),  # the YAML as submitted (secrets as written)
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=False),
)


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    id: int
    at: float
    actor: str
    source: str
    document: str
    sha256: str
    file_sha256: str


class ConfigHistory:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, version: ConfigVersion) -> int:
        """Store ``version`` (its ``id`` is ignored) and return the id given to it."""
        try:
            async with self.db.engine.begin() as connection:
                result = await connection.execute(
                    config_history.insert()
                    .values(
                        at=version.at,
                        actor=version.actor,
                        source=version.source,
                        document=version.document,
                        sha256=version.sha256,
                        file_sha256=version.file_sha256,
                    )
                    .returning(config_history.c.id)
                )
                return int(result.scalar_one())
        except Exception as error:
            raise unavailable(error) from error

    async def remove(self, version_id: int) -> None:
        """Take back a version that could not be announced (it never applied anywhere)."""
        try:
            async with self.db.engine.begin() as connection:
                await connection.execute(config_history.delete().where(config_history.c.id == version_id))
        except Exception as error:
            raise unavailable(error) from error

    async def newest(self) -> ConfigVersion | None:
        try:
            async with self.db.engine.connect() as connection:
                row = (
                    await connection.execute(
                        sa.select(config_history).order_by(config_history.c.id.desc()).limit(1)
                    )
                ).first()
        except Exception as error:
            raise unavailable(error) from error
        return ConfigVersion(**row._mapping) if row is not None else None
