"""External moderation: ask an OpenAI-compatible ``/v1/moderations`` endpoint, or a LlamaGuard-style
chat model, whether a call's text is acceptable, and refuse it (400 ``moderation_flagged``) if not.

An endpoint that fails or answers nonsense raises, so the plugin's ``failure_mode`` decides: let the
call through (``continue``) or refuse it with 503 (``abort``).
"""

from __future__ import annotations

from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from routeiq.governance.call import GovernedCall
from routeiq.plugins.base import (
    DEFAULT_MAX_SCAN_CHARS,
    GuardrailBlocked,
    Plugin,
    PluginHealth,
    PluginServices,
    check_scan_size,
)
from routeiq.plugins.text import texts


class ModerationUnavailable(Exception):
    """The moderation endpoint did not give a usable verdict."""


class ModerationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        pattern=r"^https?://",
        description="`.../v1/moderations` (style openai) or `.../v1/chat/completions` (style llamaguard).",
    )
    style: Literal["openai", "llamaguard"] = Field(default="openai", description="The endpoint's protocol.")
    api_key: SecretStr | None = Field(default=None, description="Bearer key for the endpoint.")
    model: str | None = Field(default=None, description="Moderation model (required for llamaguard).")
    categories: list[str] = Field(
        default_factory=list, description="openai style: refuse only these categories (empty: any flag)."
    )
    roles: list[str] = Field(
        default_factory=lambda: ["user"], description="Chat roles whose text is checked."
    )
    max_scan_chars: int = Field(
        default=DEFAULT_MAX_SCAN_CHARS,
        ge=1,
        description="Longest text (all of a call's texts together) sent for checking; see docs/plugins.md.",
    )

    @model_validator(mode="after")
    def _model_for_llamaguard(self) -> ModerationSettings:
        if self.style == "llamaguard" and not self.model:
            raise ValueError("style llamaguard needs `model` (the guard model's name at the endpoint)")
        return self


def openai_verdict(answer: Any, categories: list[str]) -> list[str] | None:
    """The flagged categories of a moderations response (None: not flagged)."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        raise ModerationUnavailable("moderation response has no `results` list")
    flagged: set[str] = set()
    for result in results:
        if not isinstance(result, dict) or not result.get("flagged"):
            continue
        raised = result.get("categories") or {}
        names = {name for name, on in raised.items() if on} if isinstance(raised, dict) else set()
        if categories:
            names &= set(categories)
            if not names:
                continue
        flagged |= names or {"flagged"}
    return sorted(flagged) if flagged else None


def llamaguard_verdict(answer: Any) -> list[str] | None:
    """``safe`` or ``unsafe\\nS1,S10`` in the first choice's message (None: safe)."""
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ModerationUnavailable("guard model response has no message content") from None
    lines = str(content).strip().splitlines() or [""]
    verdict = lines[0].strip().lower()
    if verdict == "safe":
        return None
    if verdict != "unsafe":
        raise ModerationUnavailable(f"guard model answered neither safe nor unsafe: {verdict[:40]!r}")
    codes = [code.strip() for line in lines[1:] for code in line.split(",") if code.strip()]
    return codes or ["unsafe"]


class ModerationPlugin(Plugin[ModerationSettings]):
    name = "moderation"
    version = "1.0.0"
    priority = 40  # after PII masking: the moderation service never sees the redacted data
    settings_model = ModerationSettings

    def __init__(self, settings: ModerationSettings) -> None:
        super().__init__(settings)
        self._http: aiohttp.ClientSession | None = None
        self._last_error: str | None = None
        self._roles = frozenset(settings.roles)

    async def startup(self, services: PluginServices) -> None:
        self._http = services.http

    async def health(self) -> PluginHealth:
        if self._last_error:
            return PluginHealth("degraded", f"last moderation call failed: {self._last_error}")
        return PluginHealth()

    async def pre_call(self, call: GovernedCall) -> None:
        found = [text for text in texts(call.body, self._roles) if text.strip()]
        call.guardrails.append(self.name)
        check_scan_size(found, self.settings.max_scan_chars)  # nor send the service megabytes
        if not found:
            return
        try:
            flagged = await self._ask(found)
        except Exception as error:  # recorded for health; the failure mode decides the call
            self._last_error = str(error) or type(error).__name__
            raise
        self._last_error = None
        if flagged:
            raise GuardrailBlocked(
                400, "moderation_flagged", f"the request was flagged by moderation ({', '.join(flagged)})"
            )

    async def _ask(self, found: list[str]) -> list[str] | None:
        settings = self.settings
        payload: dict[str, Any]
        if settings.style == "openai":
            payload = {"input": found}
            if settings.model:
                payload["model"] = settings.model
        else:
            content = "\n\n".join(found)
            payload = {"model": settings.model, "messages": [{"role": "user", "content": content}]}
            payload.update(temperature=0, max_tokens=20)
        headers = (
            {"authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
        )
        assert self._http is not None, "startup() first"
        async with self._http.post(settings.url, json=payload, headers=headers) as response:
            if response.status >= 400:
                raise ModerationUnavailable(f"moderation endpoint answered HTTP {response.status}")
            answer = await response.json(content_type=None)
        if settings.style == "openai":
            return openai_verdict(answer, settings.categories)
        return llamaguard_verdict(answer)
