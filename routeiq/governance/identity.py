"""Who is calling, established by ``AuthMiddleware`` from the credential alone.

Nothing the client sends besides the key (no ``X-Team-ID``, no ``user`` field) changes an identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from routeiq.governance.limits import Limit

IdentityKind = Literal["master", "admin", "virtual_key", "anonymous"]


@dataclass(frozen=True, slots=True)
class Identity:
    kind: IdentityKind
    key_id: str | None = None
    team: str | None = None
    user: str | None = None
    allowed_groups: tuple[str, ...] = ()  # empty: every group
    allowed_models: tuple[str, ...] = ()  # empty: every served model
    limits: tuple[Limit, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        """How audit records name this caller."""
        return f"key:{self.key_id}" if self.key_id else self.kind


ANONYMOUS = Identity("anonymous")
MASTER = Identity("master")
