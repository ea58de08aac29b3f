"""Hot reload without a gap: the serving router is replaced only by one that fully loaded and verified.

The gateway holds one ``RouterSlot`` per learned strategy (on ``app.state``, never module-level).
Request handlers read ``slot.current`` (a single attribute read: always a complete router); an admin
reload calls ``swap_from(directory)``, which loads and verifies the new artifact *before* touching the
reference. A bad artifact raises ``ArtifactError`` and the old router keeps serving.
"""

from __future__ import annotations

import threading
from pathlib import Path

from routeiq.routing.learned.artifacts import ArtifactError, load_router
from routeiq.routing.learned.encoder import Encoder
from routeiq.routing.learned.router import LearnedRouter


class RouterSlot:
    """Holds the current ``LearnedRouter``; swaps are serialised, reads are lock-free."""

    def __init__(
        self,
        router: LearnedRouter | None = None,
        *,
        hmac_key: bytes | str | None = None,
        ed25519_public_key: bytes | None = None,
        encoder: Encoder | None = None,
        loaded_encoder: Encoder | None = None,
    ) -> None:
        """``encoder``: the one every artifact must use; ``loaded_encoder``: one already loaded here,
        used by the artifacts trained with it (see ``load_router``)."""
        self._router = router
        self._hmac_key = hmac_key
        self._ed25519_public_key = ed25519_public_key
        self._encoder = encoder if encoder is not None else (router.encoder if router else None)
        self._loaded_encoder = loaded_encoder
        self._swap_lock = threading.Lock()
        self.source: Path | None = None

    @property
    def current(self) -> LearnedRouter:
        """The serving router; ``ArtifactError`` if none was ever loaded."""
        router = self._router
        if router is None:
            raise ArtifactError("no learned router is loaded in this slot")
        return router

    @property
    def loaded(self) -> bool:
        return self._router is not None

    def swap_from(self, directory: Path | str) -> LearnedRouter:
        """Load and verify ``directory``, then make it current; on any failure the old router stays."""
        with self._swap_lock:
            router = load_router(
                directory,
                hmac_key=self._hmac_key,
                ed25519_public_key=self._ed25519_public_key,
                encoder=self._encoder,
                loaded_encoder=self._loaded_encoder,
            )
            self._router = router
            self.source = Path(directory)
            return router
