"""Hard constraints: deployments that cannot take a request are removed before any scoring.

A prompt larger than a deployment's context window, images for a model without vision, tools for a
model without function calling. Unknown capabilities are given the benefit of the doubt; only what
the config or LiteLLM's model map says a deployment cannot do rules it out.
"""

from __future__ import annotations

from collections.abc import Sequence

from routeiq.routing.deployments import Deployment
from routeiq.routing.signals import Signals


class NoCapableDeployment(Exception):
    """Every healthy deployment is ruled out by what the request needs (the caller can fix it)."""


def capable(candidates: Sequence[Deployment], signals: Signals) -> list[Deployment]:
    kept = []
    reasons = set()
    for deployment in candidates:
        if deployment.max_input_tokens is not None and signals.estimated_tokens > deployment.max_input_tokens:
            reasons.add(f"the prompt (~{signals.estimated_tokens} tokens) exceeds the context window")
        elif signals.vision and deployment.supports_vision is False:
            reasons.add("the request has images and no deployment supports vision")
        elif signals.tools and deployment.supports_tools is False:
            reasons.add("the request declares tools and no deployment supports function calling")
        else:
            kept.append(deployment)
    if candidates and not kept:
        raise NoCapableDeployment("; ".join(sorted(reasons)))
    return kept
