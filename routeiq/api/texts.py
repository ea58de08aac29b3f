"""The human-written text of an OpenAI body: the one reading every layer shares.

Chat ``messages[].content`` (a string, or its ``{"type": "text", "text": ...}`` parts), completion
``prompt`` and embedding ``input`` (a string or a list of strings). Token-id lists and non-text parts
(images, audio) are not text. Routing signals, quota estimates and guardrails all read it here, so
they agree on what a request says; guardrails may also rewrite it in place.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

Rewrite = Callable[[str], str]
PROMPT_FIELDS = ("prompt", "input")


def _is_text_part(part: Any) -> bool:
    """A ``{"type": "text", "text": "..."}`` part (a part with no type but a text counts too)."""
    return isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str)


def content_texts(content: Any) -> Iterator[str]:
    """The texts of one message's ``content``: the string itself, or its text parts'."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if _is_text_part(part):
                yield part["text"]


def content_text(content: Any) -> str:
    """One message's text as a single string (its parts joined by a space)."""
    if isinstance(content, str):
        return content
    return " ".join(content_texts(content))


def _prompt_texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                yield item


def _messages(body: Mapping[str, Any], roles: Collection[str] | None) -> Iterator[dict[str, Any]]:
    """The chat messages whose role is in ``roles`` (None: all)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and (roles is None or message.get("role") in roles):
                yield message


def texts(body: Mapping[str, Any] | None, roles: Collection[str] | None = None) -> Iterator[str]:
    """Every text in the body, in order; for chat, only messages whose role is in ``roles`` (None:
    all). Reads only: the body is left as it is."""
    if not body:
        return
    for message in _messages(body, roles):
        yield from content_texts(message.get("content"))
    for key in PROMPT_FIELDS:
        yield from _prompt_texts(body.get(key))


def rewrite_texts(
    body: dict[str, Any] | None, rewrite: Rewrite, roles: Collection[str] | None = None
) -> None:
    """Replace every text ``texts`` yields (in place) by ``rewrite(text)``."""
    if not body:
        return
    for message in _messages(body, roles):
        _rewrite_content(message, rewrite)
    for key in PROMPT_FIELDS:
        value = body.get(key)
        if isinstance(value, str):
            body[key] = rewrite(value)
        elif isinstance(value, list):
            body[key] = [rewrite(item) if isinstance(item, str) else item for item in value]


def _rewrite_content(message: dict[str, Any], rewrite: Rewrite) -> None:
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = rewrite(content)
    elif isinstance(content, list):
        for part in content:
            if _is_text_part(part):
                part["text"] = rewrite(part["text"])
