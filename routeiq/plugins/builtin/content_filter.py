"""A keyword/category content filter: configured categories of words and phrases that refuse a
call when they appear in its text (and, optionally, in a non-streamed answer).

Matching is case-insensitive on whole words, so ``"bomb"`` does not match ``"bombastic"``. The error
names the category, never the matched term (the term is what the operator chose to keep out).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from routeiq.governance.call import GovernedCall
from routeiq.plugins.base import (
    DEFAULT_MAX_SCAN_CHARS,
    CallResult,
    GuardrailBlocked,
    Plugin,
    check_scan_size,
)
from routeiq.plugins.text import texts

# A small default set, enabled with ``builtin_categories``: phrases that ask for serious harm.
BUILTIN_CATEGORIES: dict[str, list[str]] = {
    "weapons": [
        "build a bomb",
        "make a bomb",
        "pipe bomb",
        "make napalm",
        "nerve agent synthesis",
        "synthesize sarin",
        "untraceable gun",
    ],
    "malware": [
        "write ransomware",
        "create ransomware",
        "build a keylogger",
        "write a keylogger",
        "botnet c2",
    ],
    "self_harm": ["how to kill myself", "suicide method", "painless way to die"],
}


def category_pattern(terms: list[str]) -> re.Pattern[str]:
    """One regular expression matching any of ``terms`` as whole words, spaces matching any run."""
    alternatives = sorted(
        (r"\s+".join(map(re.escape, term.split())) for term in terms), key=len, reverse=True
    )
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)


class ContentFilterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: dict[str, list[str]] = Field(
        default_factory=dict, description="Category name to the words and phrases that belong to it."
    )
    builtin_categories: list[Literal["weapons", "malware", "self_harm"]] = Field(
        default_factory=list, description="Shipped categories to enable as well."
    )
    block_status: Literal[400, 403] = Field(default=400, description="Status of a refused call.")
    check_responses: bool = Field(
        default=False, description="Also refuse non-streamed answers that contain a term (buffers them)."
    )
    max_scan_chars: int = Field(
        default=DEFAULT_MAX_SCAN_CHARS,
        ge=1,
        description="Longest text (a call's texts, or an answer's, together) checked; see docs/plugins.md.",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> ContentFilterSettings:
        if not self.categories and not self.builtin_categories:
            raise ValueError("configure at least one of `categories` or `builtin_categories`")
        for name, terms in self.categories.items():
            if not [term for term in terms if term.strip()]:
                raise ValueError(f"category {name!r} has no terms")
        return self


def first_category(text: str, patterns: dict[str, re.Pattern[str]]) -> str | None:
    for category, pattern in patterns.items():
        if pattern.search(text):
            return category
    return None


def _block_texts(blocks: Any, kind: str) -> list[str]:
    """The texts of ``kind`` blocks in a list (Anthropic ``content``, a Responses message's ``content``)."""
    items = blocks if isinstance(blocks, list) else []
    return [
        item["text"]
        for item in items
        if isinstance(item, dict) and item.get("type") == kind and isinstance(item.get("text"), str)
    ]


def answer_texts(body: bytes) -> list[str]:
    """The answer's text: a chat or completion response's choices, an Anthropic message's text
    blocks (``/v1/messages``), a Responses object's output messages (``/v1/responses``)."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(answer, dict):
        return []
    if answer.get("type") == "message":
        return _block_texts(answer.get("content"), "text")
    if answer.get("object") == "response":
        output = answer.get("output")
        items = output if isinstance(output, list) else []
        messages = [item for item in items if isinstance(item, dict) and item.get("type") == "message"]
        return [text for message in messages for text in _block_texts(message.get("content"), "output_text")]
    choices = answer.get("choices")
    found: list[str] = []
    for choice in choices if isinstance(choices, list) else []:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else choice.get("text")
        if isinstance(text, str):
            found.append(text)
    return found


class ContentFilterPlugin(Plugin[ContentFilterSettings]):
    name = "content_filter"
    version = "1.0.0"
    priority = 30
    settings_model = ContentFilterSettings
    waits_only_in_run_cpu = True

    def __init__(self, settings: ContentFilterSettings) -> None:
        super().__init__(settings)
        terms: dict[str, list[str]] = {name: BUILTIN_CATEGORIES[name] for name in settings.builtin_categories}
        terms.update(settings.categories)
        self.patterns = {
            name: category_pattern([term for term in words if term.strip()]) for name, words in terms.items()
        }
        self.reads_response_body = settings.check_responses

    async def pre_call(self, call: GovernedCall) -> None:
        call.guardrails.append(self.name)
        await self._refuse_if_listed(list(texts(call.body)), "request")

    async def post_call(self, call: GovernedCall, result: CallResult) -> None:
        if not self.settings.check_responses or result.body is None:
            return
        await self._refuse_if_listed(answer_texts(result.body), "response")

    async def _refuse_if_listed(self, found: list[str], where: str) -> None:
        found = check_scan_size(found, self.settings.max_scan_chars)
        category = await self.run_cpu(lambda: self._first_category(found), sum(map(len, found)))
        if category is not None:
            raise GuardrailBlocked(
                self.settings.block_status,
                "content_filtered",
                f"the {where} was refused by the content filter (category: {category})",
            )

    def _first_category(self, found: list[str]) -> str | None:
        for text in found:
            category = first_category(text, self.patterns)
            if category is not None:
                return category
        return None
