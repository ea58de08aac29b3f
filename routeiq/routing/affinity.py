"""Session affinity: within a conversation the tier may rise but never fall.

Every turn is classified afresh; the session remembers the highest tier it reached (in the
StateStore, so every worker and replica agrees) and a later easy turn does not drop the
conversation back to a weaker model. Session ids are hashed before they become keys.

A session belongs to the caller that named it: the id is namespaced by the caller's credential
(``scoped_session_id``), so two teams that both send ``user: "alice-123"`` have two sessions, and one
cannot push the other's conversation to a stronger (dearer) tier.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from typing import Any

from routeiq.routing.profiles import RANK
from routeiq.state.base import StateStore, StateUnavailable

SESSION_HEADER = "x-routeiq-session-id"


def session_id_of(body: Mapping[str, Any], header: str | None) -> str | None:
    """From the header, else ``metadata.session_id``, else the OpenAI ``user`` field."""
    if header:
        return header
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("session_id"), str):
        return str(metadata["session_id"])
    user = body.get("user")
    return user if isinstance(user, str) and user else None


def scoped_session_id(caller: str, session_id: str | None) -> str | None:
    """``session_id`` within the namespace of ``caller`` (``Identity.actor``: ``key:<key_id>``, which
    a rotation keeps, or ``master`` / ``anonymous``)."""
    if session_id is None:
        return None
    return f"{caller}\x00{session_id}"  # NUL: no caller name contains it, so no two pairs collide


class SessionAffinity:
    def __init__(self, store: StateStore, ttl_seconds: float) -> None:
        self._store = store
        self._ttl_seconds = ttl_seconds

    async def floor(self, session_id: str) -> str | None:
        try:
            record = await self._store.get_record(self._key(session_id))
        except StateUnavailable:  # fail-closed store: route on this turn alone
            return None
        tier = record.get("tier") if record else None
        return tier if tier in RANK else None

    async def reached(self, session_id: str, tier: str, floor: str | None) -> None:
        """Remember ``tier`` if it is above the floor (and refresh the TTL either way)."""
        keep = tier if floor is None or RANK[tier] > RANK[floor] else floor
        with contextlib.suppress(StateUnavailable):
            await self._store.set_record(self._key(session_id), {"tier": keep}, self._ttl_seconds)

    @staticmethod
    def _key(session_id: str) -> str:
        return "affinity:" + hashlib.sha256(session_id.encode()).hexdigest()[:32]
