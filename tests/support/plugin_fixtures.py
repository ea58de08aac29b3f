"""Third-party-style plugins for the end-to-end tests. They are found the way any installed plugin
is: through a ``routeiq.plugins`` entry point, which ``install_entry_points`` writes as a real
distribution (a ``.dist-info`` directory) into a folder the gateway gets on its ``PYTHONPATH``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from routeiq.governance.call import GovernedCall
from routeiq.plugins import Plugin, PluginHealth

DISTRIBUTION = "routeiq-test-plugins"
ENTRY_POINTS = {
    "tagger": "tests.support.plugin_fixtures:Tagger",
    "slow_continue": "tests.support.plugin_fixtures:SlowGuard",
    "slow_abort": "tests.support.plugin_fixtures:SlowGuard",
}


class TaggerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: str


class Tagger(Plugin[TaggerSettings]):
    """Adds a system message carrying ``tag`` to every chat call."""

    name = "tagger"
    version = "0.1.0"
    priority = 50
    settings_model = TaggerSettings

    async def pre_call(self, call: GovernedCall) -> None:
        messages = (call.body or {}).get("messages")
        if isinstance(messages, list):
            messages.insert(0, {"role": "system", "content": f"tag: {self.settings.tag}"})

    async def health(self) -> PluginHealth:
        return PluginHealth("ok", f"tagging with {self.settings.tag}")


class SlowSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trigger: str
    seconds: float = 5.0


class SlowGuard(Plugin[SlowSettings]):
    """Takes ``seconds`` over any call whose last message contains ``trigger``."""

    name = "slow_guard"
    settings_model = SlowSettings

    async def pre_call(self, call: GovernedCall) -> None:
        messages = (call.body or {}).get("messages") or [{}]
        if self.settings.trigger in str(messages[-1].get("content")):
            await asyncio.sleep(self.settings.seconds)


def install_entry_points(folder: Path) -> Path:
    """Write the distribution's metadata into ``folder`` (to go on PYTHONPATH); returns ``folder``."""
    dist_info = folder / f"{DISTRIBUTION.replace('-', '_')}-0.1.0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: 0.1.0\n")
    lines = [f"{name} = {target}" for name, target in ENTRY_POINTS.items()]
    (dist_info / "entry_points.txt").write_text("[routeiq.plugins]\n" + "\n".join(lines) + "\n")
    return folder
