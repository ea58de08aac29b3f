"""The human-written text of a model call's body, for guardrails to read and rewrite.

Chat ``messages[].content`` (a string or text parts), completion ``prompt`` and embedding ``input``.
Token-id lists and non-text parts (images, audio) are left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any

Rewrite = Callable[[str], str]


def texts(body: dict[str, Any] | None, roles: Collection[str] | None = None) -> Iterator[str]:
    """Every text in the body; for chat, only messages whose role is in ``roles`` (None: all)."""
    found: list[str] = []

    def collect(text: str) -> str:
        found.append(text)
        return text

    rewrite_texts(body, collect, roles)
    yield from found


def rewrite_texts(
    body: dict[str, Any] | None, rewrite: Rewrite, roles: Collection[str] | None = None
) -> None:
    """Replace every text in the body (in place) by ``rewrite(text)``."""
    if not body:
        return
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and (roles is None or message.get("role") in roles):
                _rewrite_content(message, rewrite)
    for key in ("prompt", "input"):
        if key in body:
            body[key] = _rewrite_value(body[key], rewrite)


def _rewrite_content(message: dict[str, Any], rewrite: Rewrite) -> None:
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = rewrite(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                part["text"] = rewrite(part["text"])


def _rewrite_value(value: Any, rewrite: Rewrite) -> Any:
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, list):
        return [rewrite(item) if isinstance(item, str) else item for item in value]
    return value
