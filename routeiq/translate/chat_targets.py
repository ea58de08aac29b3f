"""A translated Messages call's chat body, fitted to the deployment an attempt goes to.

The translation (``anthropic_request``) is made once, before routing, and carries what only some
chat deployments take, in LiteLLM's own terms:

- ``thinking`` (Anthropic's ``{"type": "enabled", "budget_tokens": N}``): a deployment known to
  reason (``supports_reasoning`` in LiteLLM's model map or its ``model_info``) gets it as is when
  LiteLLM serves it a Claude model (Anthropic, Bedrock, Vertex: the exact budget), else as
  ``reasoning_effort``, the budget bucketed as LiteLLM's own Anthropic adapter does (below 1024
  ``minimal``, then ``low``, from 2048 ``medium``, from 4096 ``high``). Any other deployment does
  not get it, and the answer says so (``x-routeiq-dropped: thinking``) instead of failing.
- ``thinking_blocks`` on assistant turns (the history's own thinking, signatures included): kept
  for the Claude models LiteLLM serves, which need them back; no chat upstream takes them.
- ``file`` parts (PDF documents): only for a deployment known to read PDFs
  (``supports_pdf_input``); another one answers a 400 that says so.

An OpenAI-wire reasoning model also gets ``max_completion_tokens`` for ``max_tokens`` (OpenAI's
reasoning models refuse the older name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routeiq.executors.base import UpstreamError
from routeiq.routing.deployments import Deployment

DROPPED_HEADER = "x-routeiq-dropped"


@dataclass(frozen=True, slots=True)
class ChatExtras:
    """What a translated chat body carries that not every deployment takes (read once per call)."""

    thinking: bool  # a ``thinking`` request
    thinking_history: bool  # assistant turns with ``thinking_blocks``
    pdf: bool  # ``file`` parts

    @classmethod
    def of(cls, chat: Mapping[str, Any]) -> ChatExtras:
        messages = [message for message in chat.get("messages") or () if isinstance(message, dict)]
        return cls(
            thinking="thinking" in chat,
            thinking_history=any("thinking_blocks" in message for message in messages),
            pdf=any(_has_file_part(message) for message in messages if message.get("role") == "user"),
        )

    @property
    def any(self) -> bool:
        return self.thinking or self.thinking_history or self.pdf


def _has_file_part(message: Mapping[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") == "file" for part in content
    )


def takes_anthropic_thinking(deployment: Deployment) -> bool:
    """LiteLLM serves it a Claude model, which takes ``thinking`` and ``thinking_blocks`` as Anthropic's."""
    return not deployment.speaks_openai and (
        deployment.provider == "anthropic" or "claude" in deployment.upstream_model.lower()
    )


def fit_chat_body(
    body: dict[str, Any], extras: ChatExtras, deployment: Deployment
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``body`` as ``deployment`` takes it, and the names of what it could not take (dropped)."""
    if extras.pdf and deployment.supports_pdf_input is not True:
        raise UpstreamError(
            400,
            f"deployment {deployment.id} ({deployment.upstream_model}) does not read PDF documents "
            "(supports_pdf_input in its model_info): send it as text, or to a model that reads PDFs",
            code="unsupported_document",
            retryable=False,
        )
    reasoning = deployment.supports_reasoning is True
    renames_max_tokens = reasoning and deployment.speaks_openai and "max_tokens" in body
    if not (extras.thinking or extras.thinking_history or renames_max_tokens):
        return body, ()
    fitted = dict(body)
    dropped: tuple[str, ...] = ()
    anthropic = takes_anthropic_thinking(deployment)
    thinking = fitted.pop("thinking", None)
    if isinstance(thinking, dict):
        if not reasoning:
            dropped = ("thinking",)
        elif anthropic:
            fitted["thinking"] = thinking
        else:
            # Imported here: building the app must not import LiteLLM (seconds); by the time a call
            # is translated the runtime has imported it, so this costs a dict lookup.
            from litellm.litellm_core_utils.reasoning_effort_utils import (
                reasoning_effort_from_thinking_budget,
            )

            fitted["reasoning_effort"] = reasoning_effort_from_thinking_budget(thinking["budget_tokens"])
    if renames_max_tokens:
        fitted["max_completion_tokens"] = fitted.pop("max_tokens")
    if extras.thinking_history and not anthropic:
        fitted["messages"] = [_without_thinking(message) for message in fitted["messages"]]
    return fitted, dropped


def _without_thinking(message: Any) -> Any:
    if isinstance(message, dict) and "thinking_blocks" in message:
        return {key: value for key, value in message.items() if key != "thinking_blocks"}
    return message
