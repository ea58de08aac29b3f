"""The human-written text of a model call's body, for guardrails to read and rewrite.

The reading itself lives in ``routeiq.api.texts``, shared with routing signals and quota estimates
so that every layer agrees on what a request says; this is the name plugins import it by.
"""

from __future__ import annotations

from routeiq.api.texts import Rewrite, content_texts, rewrite_texts, texts

__all__ = ["Rewrite", "content_texts", "rewrite_texts", "texts"]
