"""``model_aliases``: client model ids (Claude Code's, Codex's) served by a group or a profile."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from routeiq.routing.deployments import DeploymentTable
from routeiq.routing.profiles import Target, resolve_target
from routeiq.settings import Settings

MODEL_LIST = [
    {"model_name": "auto", "litellm_params": {"model": "openai/a", "api_base": "http://x/v1"}},
    {"model_name": "coder", "litellm_params": {"model": "openai/b", "api_base": "http://x/v1"}},
]


def _settings(aliases: dict[str, str]) -> Settings:
    return Settings.model_validate({"model_list": MODEL_LIST, "model_aliases": aliases})


def test_an_alias_resolves_to_its_group_or_profile_and_stays_the_model_as_sent() -> None:
    settings = _settings({"claude-sonnet-4-5": "coder", "claude-haiku-4-5": "eco", "gpt-5-codex": "auto"})
    table = DeploymentTable(settings.model_list, aliases=settings.model_aliases)
    assert resolve_target("claude-sonnet-4-5", table, "auto") == Target("claude-sonnet-4-5", "coder", None)
    assert resolve_target("claude-haiku-4-5", table, "auto") == Target("claude-haiku-4-5", "auto", "eco")
    assert resolve_target("gpt-5-codex", table, "auto") == Target("gpt-5-codex", "auto", None)
    assert resolve_target("claude-opus-4-1", table, "auto") == Target("claude-opus-4-1", None, None)


def test_an_alias_to_nothing_or_over_a_group_stops_startup() -> None:
    with pytest.raises(ValidationError) as raised:
        _settings({"claude-sonnet-4-5": "codr", "coder": "auto"})
    message = str(raised.value)
    assert "model_aliases.claude-sonnet-4-5 names 'codr', which is neither a group nor a profile" in message
    assert "did you mean 'coder'" in message
    assert "model_aliases: 'coder' is a group's own name" in message
