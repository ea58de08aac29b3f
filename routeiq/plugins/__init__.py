"""Plugins: guardrails and observers in the request path, built in or third-party.

Third-party plugins subclass ``Plugin`` and register it under the ``routeiq.plugins`` entry point
group; see docs/plugins.md.
"""

from routeiq.plugins.base import (
    CallResult,
    GuardrailBlocked,
    NoSettings,
    Plugin,
    PluginHealth,
    PluginServices,
)

__all__ = ["CallResult", "GuardrailBlocked", "NoSettings", "Plugin", "PluginHealth", "PluginServices"]
