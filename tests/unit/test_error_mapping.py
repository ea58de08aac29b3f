"""The one mapping from the domain's exceptions to what the client gets: status, envelope, headers."""

from __future__ import annotations

import inspect

import orjson
import pytest

from routeiq import errors
from routeiq.api.errors import APIError, error_response, to_api_error
from routeiq.errors import (
    GatewayError,
    ModelNotAllowed,
    NoDeploymentAvailable,
    PolicyDenied,
    QuotaExceeded,
    UpstreamFailed,
)

DOMAIN_ERRORS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, GatewayError) and cls is not GatewayError
]


@pytest.mark.parametrize("error_class", DOMAIN_ERRORS, ids=lambda cls: cls.__name__)
def test_every_domain_error_has_its_own_mapping(error_class: type[GatewayError]) -> None:
    assert to_api_error.dispatch(error_class) is not to_api_error.dispatch(GatewayError)


def test_policy_denial_names_the_rule_in_message_and_header() -> None:
    response = error_response(PolicyDenied("no-big", "interns may not use gpt-4o"))
    assert response.status_code == 403
    assert response.headers["x-routeiq-policy-rule"] == "no-big"
    assert orjson.loads(response.body) == {
        "error": {
            "message": "denied by policy rule 'no-big': interns may not use gpt-4o",
            "type": "permission_error",
            "param": None,
            "code": "policy_denied",
        }
    }


def test_a_budget_refusal_is_insufficient_quota_and_says_not_to_retry() -> None:
    refusal = QuotaExceeded("budget spent", "budget", {"x-ratelimit-remaining-budget": "0"}, 30.5, True)
    error = to_api_error(refusal)
    assert (error.status, error.code, error.error_type) == (429, "budget_exceeded", "insufficient_quota")
    assert error.headers == {
        "x-ratelimit-remaining-budget": "0",
        "retry-after": "31",
        "retry-after-ms": "30500",
        "x-should-retry": "false",
    }


def test_upstream_failures_take_the_type_of_their_status_and_retry_after_only_when_rate_limited() -> None:
    routing = {"x-routeiq-attempted-deployments": "a,b"}
    limited = to_api_error(
        UpstreamFailed("all rate limited", 429, "rate_limited", retry_after=2.0, routing_headers=routing)
    )
    assert (limited.status, limited.error_type) == (429, "rate_limit_error")
    assert limited.headers == {**routing, "retry-after": "2", "retry-after-ms": "2000"}
    timed_out = to_api_error(
        UpstreamFailed("all timed out", 504, "upstream_timeout", routing_headers=routing)
    )
    assert (timed_out.status, timed_out.error_type, timed_out.headers) == (504, "timeout_error", routing)
    refused = to_api_error(UpstreamFailed("bad", 400, "invalid_request", "invalid_request_error"))
    assert refused.error_type == "invalid_request_error"


def test_nothing_to_try_is_a_503_saying_whether_circuits_are_open() -> None:
    error = to_api_error(NoDeploymentAvailable("nothing healthy", 3.0, circuit_open=True))
    assert (error.status, error.code, error.headers["retry-after"]) == (503, "circuit_open", "3")


def test_permission_refusals_are_denials_for_the_audit_log() -> None:
    assert ModelNotAllowed("no").denial and PolicyDenied("r", "x").denial
    assert APIError(401, "who?").denial and not APIError(400, "bad").denial
    assert not UpstreamFailed("x", 502, "upstream_error").denial
