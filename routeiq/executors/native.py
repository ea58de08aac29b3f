"""A call in another API than chat completions, for the deployments that speak that API.

The attempt loop (``Dispatcher.dispatch(..., native=...)``) asks it, per attempt, whether the chosen
deployment takes the call as sent; if so it executes it there and its answer, already in the
client's API, goes back as bytes (``answered`` then tells the route not to translate it). Any other
deployment serves the call's chat translation, as ``chat_body_for`` fits it to that deployment (a
Messages call's ``thinking`` becomes ``reasoning_effort`` for a reasoning model, and is dropped for
the others). Implementations: Anthropic Messages (``anthropic_wire.MessagesCall``) and OpenAI
Responses (``responses_wire.ResponsesCall``).
"""

from __future__ import annotations

from typing import Any, Protocol

from routeiq.executors.base import Completed, Streaming
from routeiq.routing.deployments import Deployment


class NativeCall(Protocol):
    answered: bool

    def serves(self, deployment: Deployment) -> bool: ...

    async def execute(self, deployment: Deployment) -> Completed | Streaming: ...

    def chat_body_for(self, deployment: Deployment, body: dict[str, Any]) -> dict[str, Any]: ...
