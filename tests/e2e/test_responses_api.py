"""The official openai SDK's Responses API (``client.responses.create`` / ``.stream``) against the
real gateway, stateless: served by an OpenAI-wire deployment through chat completions, and forwarded
as sent to a deployment that serves the Responses API itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.gateway import Gateway, deployment
from tests.support.mock_upstream import MockUpstream

MASTER_KEY = "sk-test-master"
QUESTION = "What is the capital of France?"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as mock:
        yield mock


@pytest.fixture(scope="module")
def gateway(upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config: dict[str, Any] = {
        "model_list": [
            deployment("auto", "mock-toolargs", upstream.base_url, id="alpha"),
            deployment("midstream", "gpt-midstream", upstream.base_url, id="midstream"),
            deployment("native", "gpt-native", upstream.base_url, id="native", responses_api=True),
            deployment(
                "reasoner", "mock-reasoner", upstream.base_url, id="reasoner", supports_reasoning=True
            ),
            deployment("native-midstream", "gpt-midstream", upstream.base_url, id="nm", responses_api=True),
        ],
        "router_settings": {"num_retries": 0, "allowed_fails": 0, "cooldown_time": 1},
        "routeiq": {"model_aliases": {"gpt-5-codex": "auto"}},
    }
    with Gateway(config, tmp_path_factory.mktemp("responses"), {"ROUTEIQ_MASTER_KEY": MASTER_KEY}) as running:
        yield running


@pytest.fixture
def client(gateway: Gateway, upstream: MockUpstream) -> openai.OpenAI:
    upstream.clear()
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20)


def _sent(upstream: MockUpstream) -> dict[str, Any]:
    (request,) = [r for r in upstream.requests if r["path"].endswith("/chat/completions")]
    return dict(request["body"])


def test_text_with_instructions_usage_and_headers(client: openai.OpenAI, upstream: MockUpstream) -> None:
    raw = client.responses.with_raw_response.create(
        model="gpt-5-codex", input=QUESTION, instructions="Answer briefly.", max_output_tokens=50, store=False
    )
    response = raw.parse()
    assert raw.headers["x-routeiq-served-model"] == "mock-toolargs"
    assert raw.headers["x-routeiq-group"] == "auto"
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text.startswith("mock reply from mock-toolargs: What is the capital")
    assert response.store is False and response.instructions == "Answer briefly."
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (
        8,
        len(response.output_text.split()),
    )
    sent = _sent(upstream)
    assert sent["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": QUESTION},
    ]
    assert sent["max_tokens"] == 50


def test_json_schema_output_is_asked_for(client: openai.OpenAI, upstream: MockUpstream) -> None:
    text: Any = {"format": {"type": "json_schema", "name": "city", "schema": CITY_SCHEMA, "strict": True}}
    response = client.responses.create(model="auto", input=[{"role": "user", "content": QUESTION}], text=text)
    assert response.text.format.type == "json_schema"
    assert _sent(upstream)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": CITY_SCHEMA, "strict": True},
    }


def test_function_call_round_trip(client: openai.OpenAI, upstream: MockUpstream) -> None:
    first = client.responses.create(model="auto", input=QUESTION, tools=[WEATHER], tool_choice="required")  # type: ignore[list-item]
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.arguments == '{"city":"mock-city"}' and call.call_id.startswith("call_")
    assert _sent(upstream)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER["parameters"],
            },
        }
    ]
    upstream.clear()
    history: Any = [
        {"role": "user", "content": QUESTION},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "18 degrees"},
    ]
    second = client.responses.create(model="auto", input=history)
    assert second.output_text.startswith("mock reply from")
    messages = _sent(upstream)["messages"]
    assert messages[1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"mock-city"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.call_id, "content": "18 degrees"},
    ]


def test_stream_event_order_ids_and_usage(client: openai.OpenAI) -> None:
    with client.responses.stream(model="auto", input=QUESTION) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert {event.response.id for event in events if hasattr(event, "response")} == {final.id}
    item_ids = {getattr(event, "item_id", None) for event in events} - {None}
    assert item_ids == {final.output[0].id}
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert final.output_text == text and text.startswith("mock reply from mock-toolargs")
    assert final.usage is not None and final.usage.output_tokens == len(text.split())


def test_streamed_function_call_keeps_its_arguments(client: openai.OpenAI) -> None:
    with client.responses.stream(model="auto", input=QUESTION, tools=[WEATHER]) as stream:  # type: ignore[list-item]
        events = list(stream)
        final = stream.get_final_response()
    deltas = [event.delta for event in events if event.type == "response.function_call_arguments.delta"]
    assert len(deltas) > 1 and "".join(deltas) == '{"city":"mock-city"}'
    (done,) = [event for event in events if event.type == "response.function_call_arguments.done"]
    assert done.arguments == '{"city":"mock-city"}'
    (call,) = final.output
    assert call.type == "function_call" and call.arguments == '{"city":"mock-city"}'


def test_failure_mid_stream_ends_with_error_and_response_failed(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="midstream", input=QUESTION, stream=True))
    assert [event.type for event in events[-2:]] == ["error", "response.failed"]
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert failed.response.error is not None and "broke off" in failed.response.error.message
    with pytest.raises(RuntimeError), client.responses.stream(model="midstream", input=QUESTION) as stream:
        stream.get_final_response()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input.0.type"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input.0.role"),
        ({"input": "hi", "tools": [{"type": "web_search"}]}, "tools.0.type"),
        ({}, "input"),
    ],
)
def test_bad_or_stateful_input_is_a_400(client: openai.OpenAI, body: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.post("/responses", body={"model": "auto", **body}, cast_to=dict)
    assert raised.value.param == param
    if param == "previous_response_id":
        assert "stateless" in raised.value.message


# --- a deployment that serves the Responses API itself: the request forwarded as sent -------------


def test_native_deployment_gets_the_request_as_sent_never_stored(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    raw = client.responses.with_raw_response.create(
        model="native", input=QUESTION, include=["reasoning.encrypted_content"], store=True
    )
    response = raw.parse()
    assert raw.headers["x-routeiq-served-model"] == "gpt-native"
    assert response.id.startswith("resp_mock")  # the deployment's own answer, as sent
    assert response.output_text == "native reply from gpt-native: What is the capital of France?"
    assert response.usage is not None and response.usage.output_tokens == len(response.output_text.split())
    (sent,) = [r for r in upstream.requests if r["path"] == "/v1/responses"]
    assert sent["body"]["model"] == "gpt-native" and sent["body"]["input"] == QUESTION
    assert sent["body"]["include"] == ["reasoning.encrypted_content"]
    assert sent["body"]["store"] is False  # stateless: nothing left on the provider
    assert sent["headers"]["authorization"] == "Bearer sk-upstream"


def test_native_stream_and_its_failure(client: openai.OpenAI) -> None:
    with client.responses.stream(model="native", input=QUESTION) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert final.output_text.startswith("native reply from gpt-native")
    broken = list(client.responses.create(model="native-midstream", input=QUESTION, stream=True))
    assert [event.type for event in broken[-2:]] == ["error", "response.failed"]
    assert [event.sequence_number for event in broken] == list(range(len(broken)))


def test_reasoning_is_a_reasoning_item_before_the_message(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    response = client.responses.create(model="reasoner", input=QUESTION, reasoning={"effort": "high"})
    assert _sent(upstream)["reasoning_effort"] == "high"
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.content is not None
    assert reasoning.content[0].text == "mock reasoning at effort high"
    assert message.type == "message" and response.output_text.startswith("mock reply from mock-reasoner")
    with client.responses.stream(model="reasoner", input=QUESTION) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds.index("response.reasoning_text.delta") < kinds.index("response.reasoning_text.done")
    assert kinds.index("response.reasoning_text.done") < kinds.index("response.output_text.delta")
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].content[0].text == "mock reasoning at effort None"  # type: ignore[union-attr]
