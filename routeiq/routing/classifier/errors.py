"""The one error the classifier raises when its shipped artifacts cannot be trusted."""

from __future__ import annotations


class ClassifierUnavailable(RuntimeError):
    """Artifacts are missing, unreadable or do not match their recorded sha256.

    Raised loudly at load time (never at classify time) so that readiness and metrics can say the
    zero-config router is degraded instead of it silently routing at random.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
