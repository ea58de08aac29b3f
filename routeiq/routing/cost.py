"""``cost-based-routing``: the cheapest healthy deployment, by configured or LiteLLM-mapped price."""

from __future__ import annotations

from collections.abc import Sequence

from routeiq.routing.catalogue import strategy_spec
from routeiq.routing.deployments import Deployment
from routeiq.routing.strategy import RoutingChoice, RoutingContext


class CheapestFirst:
    name = "cost-based-routing"
    description = strategy_spec(name).description

    def choose(self, candidates: Sequence[Deployment], context: RoutingContext) -> RoutingChoice:
        priced = [candidate for candidate in candidates if candidate.cost_per_token is not None]
        if not priced:
            return RoutingChoice(candidates[0], self.name, "no prices known: first healthy deployment")
        cheapest = min(priced, key=lambda candidate: candidate.cost_per_token or 0.0)
        per_million = (cheapest.cost_per_token or 0.0) * 1_000_000
        return RoutingChoice(
            cheapest,
            self.name,
            f"cheapest of {len(priced)} priced (${per_million:.2f}/M tokens)",
            scores={candidate.id: candidate.cost_per_token or 0.0 for candidate in priced},
        )
