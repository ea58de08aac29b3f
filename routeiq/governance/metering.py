"""What a stream used when it ended before the upstream reported its usage.

A stream's usage normally comes from its usage chunk, which the upstream sends last. A client that
disconnects after the content but before that chunk (or an upstream that breaks off) would otherwise
leave the call with no usage at all: nothing charged to budgets or the spend log although the
deployment did the work. ``StreamMeter`` counts the text the gateway forwarded instead, cheaply
(one regular expression over the SSE bytes, no JSON parsing per chunk), and turns it into a usage
estimate at the same rough rate the quota estimate uses (characters / 4).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from routeiq.governance.quota import CHARS_PER_TOKEN, prompt_tokens

# A JSON string field that carries generated text in a chat or text-completion chunk: the content,
# a legacy completion's text, tool-call arguments, reasoning, a refusal. Escapes count as written
# (``\u00e9`` is six characters), which errs towards charging more, never less.
_GENERATED_TEXT = re.compile(rb'"(?:content|text|arguments|reasoning_content|refusal)":"((?:[^"\\]|\\.)*)"')

ESTIMATED_FLAG = "routeiq_estimated"  # marks a usage the gateway estimated rather than the upstream sent


class StreamMeter:
    """Counts the generated characters of the SSE events a stream forwarded."""

    __slots__ = ("characters",)

    def __init__(self) -> None:
        self.characters = 0

    def feed(self, events: bytes) -> None:
        for match in _GENERATED_TEXT.finditer(events):
            self.characters += len(match.group(1))

    def usage(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """An OpenAI-shaped usage for the request ``body``: its estimated prompt tokens and the
        tokens of the text streamed so far."""
        prompt = prompt_tokens(body)
        completion = math.ceil(self.characters / CHARS_PER_TOKEN)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            ESTIMATED_FLAG: True,
        }
