"""The request side: a translated API's body to the chat-completions body every layer serves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeiq.api.requests import InvalidRequest, validate_body
from routeiq.middleware.paths import BodyKind
from routeiq.translate.anthropic_request import messages_to_chat
from routeiq.translate.responses_request import responses_to_chat

TRANSLATORS: dict[BodyKind, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "messages": messages_to_chat,
    "responses": responses_to_chat,
}
TRANSLATED_KINDS = frozenset(TRANSLATORS)


def to_chat_body(kind: BodyKind, body: dict[str, Any]) -> dict[str, Any]:
    """The chat body for ``body``; a 400 naming the client's own field when ``body`` is invalid."""
    try:
        chat = TRANSLATORS[kind](body)
    except InvalidRequest as invalid:
        raise invalid.to_api_error() from None
    validate_body("chat", chat)  # what the translation produced obeys the chat rules too
    return chat
