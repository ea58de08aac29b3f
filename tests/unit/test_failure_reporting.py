"""How a failed request is put into words and classified, without a server."""

from __future__ import annotations

from routeiq.executors.litellm_router import provider_detail
from routeiq.observability.ledger import request_outcome
from routeiq.routing.decision import FailedAttempt, RequestTrace, failure_message

LITELLM_MESSAGE = (
    "litellm.InternalServerError: InternalServerError: OpenAIException - The server had an error."
    "\n\nLiteLLM: model group 'broken' failed with the error above. No fallback was attempted."
)


def test_the_providers_message_is_kept_and_litellms_wrapping_dropped() -> None:
    assert provider_detail(LITELLM_MESSAGE) == "The server had an error."
    assert provider_detail("AnthropicException - overloaded. Handle with `litellm.InternalServerError`.") == (
        "overloaded"
    )
    assert provider_detail("plain words") == "plain words"
    assert provider_detail("litellm.APIError: APIError: ") == "no detail given"


def test_the_message_names_every_attempt_and_what_became_of_the_fallbacks() -> None:
    trace = RequestTrace(group="primary", strategy="simple-shuffle")
    trace.failures = [
        FailedAttempt("a", "primary", "upstream_error", 502, "deployment a answered 500: boom"),
        FailedAttempt("b", "backup", "upstream_timeout", 504, "deployment b did not answer in time"),
    ]
    trace.fallbacks_tried = ["backup"]
    trace.skipped = {"secret": "not tried, outside this key's allowed groups"}
    message = failure_message(trace, ["backup", "secret"])
    assert message.startswith("no deployment answered for 'primary'. Tried: deployment a answered 500: boom")
    assert "[upstream_error]" in message and "[upstream_timeout]" in message
    assert "'secret': not tried, outside this key's allowed groups." in message
    assert message.endswith("Fallbacks ran: backup.")
    assert trace.attempted() == ["a", "b"]
    alone = RequestTrace(group="solo", failures=trace.failures[:1])
    assert failure_message(alone, []).endswith("No fallback group is configured for 'solo'.")


def test_outcomes() -> None:
    assert request_outcome(RequestTrace(served=True), 200, None) == "ok"
    assert request_outcome(RequestTrace(), 503, "overloaded") == "shed"
    assert request_outcome(RequestTrace(), 503, "draining") == "shed"
    assert request_outcome(RequestTrace(), 503, "no_healthy_deployment") == "failed"
    assert request_outcome(RequestTrace(), 401, "invalid_api_key") == "rejected"
    upstream_refused = RequestTrace(
        failures=[FailedAttempt("a", "g", "upstream_rejected_request", 400, "no")]
    )
    assert request_outcome(upstream_refused, 400, "upstream_rejected_request") == "failed"
    broke = RequestTrace(served=True, streaming=True, stream_error="upstream_stream_interrupted")
    assert request_outcome(broke, 200, "upstream_stream_interrupted") == "interrupted"
    left = RequestTrace(served=True, streaming=True)
    assert request_outcome(left, 200, None) == "client_disconnected"
    assert request_outcome(RequestTrace(), 0, None) == "client_disconnected"
