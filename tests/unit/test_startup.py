"""Startup that fails half-way closes exactly what it had opened: nothing leaks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from routeiq.plugins.base import NoSettings, Plugin, PluginServices
from routeiq.resilience.traffic import TrafficGate
from routeiq.settings import PluginConfig, Settings

MODEL = {"model_name": "chat", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "sk-test"}}


async def test_a_plugin_failing_to_start_closes_what_startup_had_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from routeiq.runtime import build_runtime  # imports LiteLLM

    lent: list[aiohttp.ClientSession] = []
    shut_down: list[str] = []

    class Opens(Plugin[NoSettings]):
        """Starts fine and keeps what the gateway lent it, to see it closed again."""

        name = "opens"

        async def startup(self, services: PluginServices) -> None:
            lent.append(services.http)

        async def shutdown(self) -> None:
            shut_down.append(self.name)

    class FailsToStart(Plugin[NoSettings]):
        name = "fails_to_start"

        async def startup(self, services: PluginServices) -> None:
            raise ConnectionError("its backend is unreachable")

    plugins: dict[str, type[Plugin[Any]]] = {"opens": Opens, "fails_to_start": FailsToStart}
    monkeypatch.setattr("routeiq.plugins.manager.find_plugin_class", lambda name: (plugins[name], "test"))
    settings = Settings(
        model_list=[MODEL],
        data_dir=str(tmp_path),
        decision_log="off",
        plugins=[PluginConfig(name="opens", priority=1), PluginConfig(name="fails_to_start", priority=2)],
    )
    with pytest.raises(RuntimeError, match="'fails_to_start' failed to start"):
        await build_runtime(settings, TrafficGate(10, 1000, 10))
    (session,) = lent
    assert session.closed  # the pooled HTTP session, opened before the plugins started
    assert shut_down == ["opens"]  # the plugin that had started is shut down again
