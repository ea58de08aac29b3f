"""The ``llmrouter-*`` strategies: send each request to the cheapest tier that will answer it well.

A scorer judges the prompt (p_strong, category); the profile, the request's signals and the
session's floor turn that into a wanted tier; the strategy then picks among the healthy candidates
of that tier (or of the nearest tier that has any).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from routeiq.routing.catalogue import StrategySpec
from routeiq.routing.deployments import Deployment
from routeiq.routing.profiles import RANK, nearest_tier, tier_of, wanted_tier
from routeiq.routing.scoring import Scorer
from routeiq.routing.shuffle import WeightedShuffle
from routeiq.routing.strategy import RoutingChoice, RoutingContext, RoutingStrategy


class TierRouting:
    """Weighted pick within the wanted tier."""

    def __init__(self, spec: StrategySpec, scorer: Scorer) -> None:
        self.name = spec.name
        self.description = spec.description
        self.scorer = scorer
        self._shuffle = WeightedShuffle()

    def judges(self, candidates: Sequence[Deployment], context: RoutingContext) -> bool:
        """Whether ``choose`` will judge the prompt (not when the request already was: retries and
        fallbacks reuse the judgement)."""
        return context.assessment is None and not _one_tier(candidates, context)

    def choose(self, candidates: Sequence[Deployment], context: RoutingContext) -> RoutingChoice:
        if _one_tier(candidates, context):
            chosen, how = self._shuffle.pick(candidates)
            return RoutingChoice(
                chosen, self.name, f"single tier {tier_of(chosen)}; {how}", tier=tier_of(chosen)
            )
        if context.assessment is None:  # judged once per request: retries and fallbacks reuse it
            context.assessment = self.scorer.assess(context.signals.text)
        plan = wanted_tier(context.profile, context.assessment, context.signals, context.session_floor)
        chosen, how = self._select(candidates, plan.tier)
        reason = f"{plan.why} -> {plan.tier}; {how}"
        return RoutingChoice(chosen, self.name, reason, tier=tier_of(chosen), assessment=context.assessment)

    def _select(self, candidates: Sequence[Deployment], tier: str) -> tuple[Deployment, str]:
        chosen, how = self._shuffle.pick(nearest_tier(candidates, tier))
        if tier_of(chosen) != tier:
            how = f"no healthy {tier} deployment, nearest tier {tier_of(chosen)}; {how}"
        return chosen, how


def _one_tier(candidates: Sequence[Deployment], context: RoutingContext) -> bool:
    """One tier to choose from: judging the prompt could not change the outcome, so it is not judged."""
    return context.profile == "auto" and len({tier_of(candidate) for candidate in candidates}) == 1


async def judge_off_loop(
    strategy: RoutingStrategy, candidates: Sequence[Deployment], context: RoutingContext
) -> None:
    """Before ``strategy.choose``: a tier strategy whose scorer is slow judges the prompt in a worker
    thread, and ``choose`` reuses that judgement, so a transformer encoder does not hold up the event
    loop. Anything else is left to ``choose`` (the static encoder takes a fraction of a millisecond)."""
    if isinstance(strategy, TierRouting) and strategy.scorer.slow and strategy.judges(candidates, context):
        context.assessment = await asyncio.to_thread(strategy.scorer.assess, context.signals.text)


class CheapestCapable(TierRouting):
    """The cheapest deployment whose tier is at least the wanted one."""

    def _select(self, candidates: Sequence[Deployment], tier: str) -> tuple[Deployment, str]:
        capable = [d for d in candidates if RANK[tier_of(d)] >= RANK[tier]] or nearest_tier(candidates, tier)
        chosen = min(
            capable, key=lambda d: (d.cost_per_token is None, d.cost_per_token or 0.0, RANK[tier_of(d)])
        )
        return chosen, f"cheapest of {len(capable)} capable"
