"""Virtual keys: stored by the sha256 of their secret, looked up by that hash on every request."""

from __future__ import annotations

import builtins
import time
from dataclasses import asdict, fields
from typing import Any

import sqlalchemy as sa

from routeiq.store.database import Database, StoreConflict, unavailable
from routeiq.store.records import KeyRecord
from routeiq.store.schema import virtual_keys

UPDATABLE = frozenset(
    {
        "name",
        "team",
        "user",
        "allowed_groups",
        "allowed_models",
        "limits",
        "metadata",
        "expires_at",
        "revoked_at",
        "key_hash",
        "key_prefix",
    }
)
COLUMNS = tuple(field.name for field in fields(KeyRecord))


class KeyRepository:
    """Insert, look up, list and change virtual keys. Every database failure is ``StoreUnavailable``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, record: KeyRecord) -> KeyRecord:
        """Store a new key; ``StoreConflict`` if its id or hash exists. Unset times become now."""
        now = time.time()
        row = asdict(record)
        row["created_at"] = record.created_at or now
        row["updated_at"] = record.updated_at or row["created_at"]
        try:
            async with self.db.engine.begin() as connection:
                await connection.execute(virtual_keys.insert().values(**row))
        except sa.exc.IntegrityError:
            raise StoreConflict("a key with this id or secret already exists") from None
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error
        return KeyRecord(**row)

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        """The key whose secret hashes to ``key_hash``, revoked or expired ones included (the
        caller decides what those mean)."""
        return await self._one(virtual_keys.c.key_hash == key_hash)

    async def get(self, key_id: str) -> KeyRecord | None:
        return await self._one(virtual_keys.c.key_id == key_id)

    async def list(
        self,
        team: str | None = None,
        user: str | None = None,
        include_revoked: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[KeyRecord]:
        """Keys newest first, optionally of one team and/or user."""
        newest_first = (virtual_keys.c.created_at.desc(), virtual_keys.c.key_id.desc())
        query = sa.select(virtual_keys).order_by(*newest_first)
        if team is not None:
            query = query.where(virtual_keys.c.team == team)
        if user is not None:
            query = query.where(virtual_keys.c.user == user)
        if not include_revoked:
            query = query.where(virtual_keys.c.revoked_at.is_(None))
        query = query.limit(max(limit, 0)).offset(max(offset, 0))
        try:
            async with self.db.engine.connect() as connection:
                rows = (await connection.execute(query)).mappings().all()
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error
        return [_record(row) for row in rows]

    async def update(self, key_id: str, **changes: Any) -> KeyRecord | None:
        """Change some of a key's fields (``UPDATABLE``); returns the key as stored, None if absent."""
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update key field(s): {', '.join(sorted(unknown))}")
        values = {**changes, "updated_at": time.time()}
        statement = virtual_keys.update().where(virtual_keys.c.key_id == key_id).values(**values)
        try:
            async with self.db.engine.begin() as connection:
                result = await connection.execute(statement)
                if result.rowcount == 0:
                    return None
                row = (
                    (await connection.execute(sa.select(virtual_keys).where(virtual_keys.c.key_id == key_id)))
                    .mappings()
                    .one()
                )
        except sa.exc.IntegrityError:
            raise StoreConflict("another key already has this secret") from None
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error
        return _record(row)

    async def _one(self, condition: sa.ColumnElement[bool]) -> KeyRecord | None:
        try:
            async with self.db.engine.connect() as connection:
                row = (await connection.execute(sa.select(virtual_keys).where(condition))).mappings().first()
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            raise unavailable(error) from error
        return None if row is None else _record(row)


def _record(row: Any) -> KeyRecord:
    return KeyRecord(**{name: row[name] for name in COLUMNS})
