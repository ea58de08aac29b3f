"""The active routing strategies, changeable at runtime and the same on every worker and replica.

A change (for every group, or for one) is the subject ``routing.strategies`` of the live-change
mechanism: every worker swaps its strategy when the change reaches it. With Redis away a change is
refused, or applied to this worker alone when ``state_failure_mode.routing`` is ``open``.
"""

from __future__ import annotations

import logging
from typing import Any

from routeiq.routing.picker import Picker
from routeiq.routing.registry import StrategyDeps, create_strategy, strategy_names
from routeiq.state.changes import Change, LiveChanges

logger = logging.getLogger("routeiq.routing")

SUBJECT = "routing.strategies"


class ActiveStrategy:
    def __init__(
        self,
        changes: LiveChanges,
        picker: Picker,
        deps: StrategyDeps,
        default: str,
        groups: dict[str, str],
        local_if_unavailable: bool = True,
    ) -> None:
        self._changes = changes
        self._picker = picker
        self._deps = deps
        self._configured = {"default": default, "groups": dict(groups)}
        self._local_if_unavailable = local_if_unavailable
        self._apply(self._configured)
        changes.watch(SUBJECT, self._on_change)

    def names(self) -> dict[str, Any]:
        return {
            "default": self._picker.default_strategy.name,
            "groups": {group: strategy.name for group, strategy in self._picker.group_strategies.items()},
        }

    async def set(self, name: str, group: str | None = None) -> int | None:
        """Make ``name`` the strategy of ``group`` (or the default for every group without its own);
        returns the change's version (None: applied to this worker only, the shared state is away)."""
        create_strategy(name, self._deps)  # refuse what cannot be built before anything changes
        wanted = self.names()
        if group is None:
            wanted["default"] = name
        else:
            wanted["groups"][group] = name
        return await self._changes.publish(SUBJECT, wanted, local_if_unavailable=self._local_if_unavailable)

    def _on_change(self, change: Change) -> None:
        self._apply(change.value if change.value is not None else self._configured)

    def _apply(self, wanted: dict[str, Any]) -> None:
        default = wanted.get("default")
        if isinstance(default, str) and default != self._picker.default_strategy.name:
            self._picker.default_strategy = self._build(default) or self._picker.default_strategy
            logger.info("routing strategy is now %s", self._picker.default_strategy.name)
        groups = wanted.get("groups") or {}
        # A group neither configured nor in the change has had its own strategy taken away (a config
        # apply that drops it from group_strategies announces the groups it keeps): back to the default.
        kept = {*groups, *self._configured["groups"]}
        for group in [known for known in self._picker.group_strategies if known not in kept]:
            del self._picker.group_strategies[group]
            logger.info("routing strategy for group %s is now the default", group)
        for group, name in groups.items():
            current = self._picker.group_strategies.get(group)
            if current is None or current.name != name:
                built = self._build(name)
                if built is not None:
                    self._picker.group_strategies[group] = built
                    logger.info("routing strategy for group %s is now %s", group, name)

    def _build(self, name: str) -> Any:
        if name not in strategy_names():
            return None
        try:
            return create_strategy(name, self._deps)
        except ValueError:  # e.g. a learned router this process has no artifact for
            logger.warning("cannot use strategy %s here", name, exc_info=True)
            return None
