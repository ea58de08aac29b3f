"""What a request says about itself beyond its words: agentic shape, reasoning asks, images, size.

Read once per request from the OpenAI body, cheaply (no model), and used both as hard constraints
(a vision request needs a vision deployment; the prompt must fit the context window) and as routing
hints (an agent loop or a proof request wants a stronger tier).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routeiq.api.texts import content_text, texts

CHARS_PER_TOKEN = 4  # a deliberately rough estimate: good enough to rule out too-small windows
LONG_SYSTEM_PROMPT_CHARS = 2000
DEEP_CONVERSATION_TURNS = 12

REASONING_MARKERS = re.compile(
    r"\b(step[- ]by[- ]step|prove|proof|derive|derivation|rigorous(ly)?|think (carefully|hard)|"
    r"reason (through|about)|show (your|all) work|formal(ly)? verif\w*|theorem|lemma)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Signals:
    text: str  # the user's words the classifier reads (latest user turn, plus the system prompt)
    estimated_tokens: int
    tools: bool
    tool_results: bool
    long_system_prompt: bool
    deep_conversation: bool
    reasoning: bool
    vision: bool

    @property
    def agentic(self) -> bool:
        return self.tools or self.tool_results or self.long_system_prompt or self.deep_conversation

    def names(self) -> list[str]:
        """The signals that fired, for headers and decision events."""
        flags = {
            "tools": self.tools,
            "tool_results": self.tool_results,
            "long_system_prompt": self.long_system_prompt,
            "deep_conversation": self.deep_conversation,
            "reasoning": self.reasoning,
            "vision": self.vision,
        }
        return [name for name, fired in flags.items() if fired]


def _has_image(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(part, Mapping) and part.get("type") in ("image_url", "input_image") for part in content
    )


def read_signals(body: Mapping[str, Any]) -> Signals:
    messages = body.get("messages")
    if not isinstance(messages, list):  # completions and embeddings: the prompt is the text
        text = " ".join(texts(body))
        return Signals(text, len(text) // CHARS_PER_TOKEN, False, False, False, False, False, False)
    total_chars = 0
    system_chars = 0
    last_user = ""
    tool_results = vision = False
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        role, content = message.get("role"), message.get("content")
        text = content_text(content)
        total_chars += len(text)
        if role in ("system", "developer"):
            system_chars += len(text)
        elif role == "user":
            last_user = text
            vision = vision or _has_image(content)
        elif role == "tool" or role == "function":
            tool_results = True
    return Signals(
        text=last_user,
        estimated_tokens=total_chars // CHARS_PER_TOKEN,
        tools=bool(body.get("tools") or body.get("functions")),
        tool_results=tool_results,
        long_system_prompt=system_chars >= LONG_SYSTEM_PROMPT_CHARS,
        deep_conversation=len(messages) >= DEEP_CONVERSATION_TURNS,
        reasoning=bool(REASONING_MARKERS.search(last_user)),
        vision=vision,
    )
