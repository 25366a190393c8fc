"""The official OpenAI SDK against the simulator's Responses API (``/v1/responses``, and Azure's paths)."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import test_utils
from openai.types.responses import FunctionToolParam, ResponseInputParam, ResponseStreamEvent
from pydantic import BaseModel

from modelyard_simulator import Behaviour, RequestLog, ScenarioBook
from tests.simulator.conftest import KEY

QUESTION = "What is the weather in Oslo?"
TOOLS: list[FunctionToolParam] = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": False,
    }
]
TOOL_HEADER = {"x-simulator-tool-call": json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})}
LONG_REPLY = " ".join(f"word{n}" for n in range(40))


async def collect(stream: Any, into: list[ResponseStreamEvent]) -> None:
    """Gather events until the stream ends or fails, so a test can inspect what came first."""
    async for event in stream:
        into.append(event)


async def test_whole_response_echoes_the_request_with_usage(oai: openai.AsyncOpenAI) -> None:
    raw = await oai.responses.with_raw_response.create(
        model="gpt-sim", input=QUESTION, instructions="Be brief.", metadata={"ticket": "42"}, store=False
    )
    response = raw.parse()
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert abs(response.created_at - time.time()) < 60
    assert response.output_text == f"echo: {QUESTION}"
    [message] = response.output
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.status == "completed"
    assert (response.instructions, response.metadata, response.model) == ("Be brief.", {"ticket": "42"}, "gpt-sim")
    assert response.model_extra is not None
    assert response.model_extra["store"] is False
    assert response.usage is not None
    assert response.usage.input_tokens == 8  # six for the question, two for the instructions
    assert response.usage.output_tokens == 7
    assert response.usage.total_tokens == 15
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert raw.headers["x-request-id"].startswith("req_")


async def test_input_items_answer_the_last_user_message(oai: openai.AsyncOpenAI) -> None:
    items: ResponseInputParam = [
        {"role": "developer", "content": "Answer in one line."},
        {"role": "user", "content": "earlier question"},
        {"type": "message", "role": "assistant", "content": "earlier answer"},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": QUESTION},
                {"type": "input_image", "image_url": "data:image/png;base64," + "A" * 4000, "detail": "low"},
            ],
        },
    ]
    response = await oai.responses.create(model="gpt-sim", input=items)
    assert response.output_text == f"echo: {QUESTION}"
    assert response.usage is not None
    assert response.usage.input_tokens == 4 + 2 + 2 + 6  # the image's data is not text


async def test_declared_function_is_called_when_the_behaviour_says_so(oai: openai.AsyncOpenAI) -> None:
    response = await oai.responses.create(model="gpt-sim", input=QUESTION, tools=TOOLS, extra_headers=TOOL_HEADER)
    [call] = response.output
    assert call.type == "function_call"
    assert call.call_id.startswith("call_")
    assert call.id is not None
    assert call.id.startswith("fc_")
    assert (call.name, json.loads(call.arguments), call.status) == ("get_weather", {"city": "Oslo"}, "completed")
    assert response.status == "completed"

    plain = await oai.responses.create(model="gpt-sim", input=QUESTION, extra_headers=TOOL_HEADER)
    declined = await oai.responses.create(
        model="gpt-sim", input=QUESTION, tools=TOOLS, tool_choice="none", extra_headers=TOOL_HEADER
    )
    assert [item.type for item in plain.output] == [item.type for item in declined.output] == ["message"]


async def test_after_the_function_output_the_model_answers_in_text(oai: openai.AsyncOpenAI) -> None:
    first = await oai.responses.create(model="gpt-sim", input=QUESTION, tools=TOOLS, extra_headers=TOOL_HEADER)
    call = first.output[0]
    assert call.type == "function_call"
    items: ResponseInputParam = [
        {"role": "user", "content": QUESTION},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "4C and sunny"},
    ]
    second = await oai.responses.create(model="gpt-sim", input=items, tools=TOOLS, extra_headers=TOOL_HEADER)
    assert second.output_text == "echo: 4C and sunny"


@pytest.mark.parametrize(
    "choice",
    [
        "required",
        {"type": "function", "name": "get_weather"},
        {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]},
    ],
)
async def test_forcing_tool_choice_calls_with_arguments_from_the_schema(oai: openai.AsyncOpenAI, choice: Any) -> None:
    response = await oai.responses.create(model="gpt-sim", input=QUESTION, tools=TOOLS, tool_choice=choice)
    [call] = response.output
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"city": QUESTION}


class Forecast(BaseModel):
    city: str
    celsius: float


async def test_json_schema_output_parses_into_the_model(oai: openai.AsyncOpenAI) -> None:
    parsed = await oai.responses.parse(model="gpt-sim", input=QUESTION, text_format=Forecast)
    assert parsed.output_parsed == Forecast(city=QUESTION, celsius=1.0)
    assert parsed.text is not None
    assert parsed.text.format is not None
    assert parsed.text.format.type == "json_schema"


async def test_reasoning_effort_adds_a_summarised_reasoning_item_and_tokens(oai: openai.AsyncOpenAI) -> None:
    response = await oai.responses.create(
        model="gpt-sim",
        input=QUESTION,
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    reasoning, message = response.output
    assert reasoning.type == "reasoning"
    assert [s.text for s in reasoning.summary] == [f"The user said: {QUESTION}"]
    assert reasoning.encrypted_content
    assert message.type == "message"
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == 9
    assert response.usage.output_tokens == 7 + 9
    assert response.reasoning is not None
    assert response.reasoning.effort == "low"


async def test_max_output_tokens_makes_the_response_incomplete(oai: openai.AsyncOpenAI) -> None:
    response = await oai.responses.create(
        model="gpt-sim", input=QUESTION, max_output_tokens=16, extra_headers={"x-simulator-reply": LONG_REPLY}
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == " ".join(f"word{n}" for n in range(16))
    assert response.output[0].type == "message"
    assert response.output[0].status == "incomplete"
    assert response.usage is not None
    assert response.usage.output_tokens == 16

    with pytest.raises(openai.BadRequestError) as caught:
        await oai.responses.create(model="gpt-sim", input=QUESTION, max_output_tokens=5)
    assert (caught.value.code, caught.value.param) == ("integer_below_min_value", "max_output_tokens")


async def test_previous_response_id_continues_a_stored_response(oai: openai.AsyncOpenAI) -> None:
    first = await oai.responses.create(model="gpt-sim", input=QUESTION)
    second = await oai.responses.create(model="gpt-sim", input="and then?", previous_response_id=first.id)
    assert first.usage is not None
    assert second.usage is not None
    carried = first.usage.input_tokens + first.usage.output_tokens
    assert second.usage.input_tokens == carried + 2
    assert second.usage.input_tokens_details.cached_tokens == carried
    assert second.previous_response_id == first.id

    unstored = await oai.responses.create(model="gpt-sim", input=QUESTION, store=False)
    for unknown in (unstored.id, "resp_unknown"):
        with pytest.raises(openai.BadRequestError) as caught:
            await oai.responses.create(model="gpt-sim", input="again", previous_response_id=unknown)
        assert caught.value.code == "previous_response_not_found"
        assert caught.value.param == "previous_response_id"
        assert caught.value.message.endswith(f"Previous response with id '{unknown}' not found.")


async def test_stream_events_are_typed_numbered_and_accumulate(oai: openai.AsyncOpenAI) -> None:
    async with oai.responses.stream(model="gpt-sim", input=QUESTION) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 7,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == f"echo: {QUESTION}"
    assert final.usage is not None
    assert final.usage.output_tokens == 7
    assert {e.response.id for e in events if e.type in ("response.created", "response.completed")} == {final.id}


async def test_stream_each_sse_event_names_its_type(sim: test_utils.TestServer) -> None:
    body = {"model": "gpt-sim", "input": "hi", "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(sim.make_url("/v1/responses"), json=body, headers=headers) as resp,
    ):
        text = (await resp.read()).decode()
    blocks = [block.split("\n") for block in text.strip().split("\n\n")]
    for event_line, data_line in blocks:
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}"
    assert blocks[-1][0] == "event: response.completed"


async def test_stream_function_call_and_parsed_json(oai: openai.AsyncOpenAI) -> None:
    async with oai.responses.stream(model="gpt-sim", input=QUESTION, tools=TOOLS, extra_headers=TOOL_HEADER) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    [done] = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(deltas) > 1
    assert "".join(deltas) == done.arguments
    [call] = final.output
    assert call.type == "function_call"
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Oslo"})

    async with oai.responses.stream(model="gpt-sim", input=QUESTION, text_format=Forecast) as parsed_stream:
        parsed = await parsed_stream.get_final_response()
    assert parsed.output_parsed == Forecast(city=QUESTION, celsius=1.0)


async def test_stream_cut_by_max_output_tokens_ends_incomplete(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.responses.create(
        model="gpt-sim",
        input=QUESTION,
        max_output_tokens=16,
        stream=True,
        extra_headers={"x-simulator-reply": LONG_REPLY},
    )
    events = [event async for event in stream]
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert sum(e.type == "response.output_text.delta" for e in events) == 16


async def test_stream_reasoning_summary_events_come_first(oai: openai.AsyncOpenAI) -> None:
    async with oai.responses.stream(
        model="gpt-sim", input="hi", reasoning={"effort": "high", "summary": "detailed"}
    ) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds.index("response.reasoning_summary_text.done") < kinds.index("response.output_text.delta")
    assert [item.type for item in final.output] == ["reasoning", "message"]


async def test_refusal_is_a_refusal_part_whole_and_streamed(oai: openai.AsyncOpenAI) -> None:
    refuse = {"x-simulator-refusal": "true"}
    response = await oai.responses.create(model="gpt-sim", input=QUESTION, extra_headers=refuse)
    [message] = response.output
    assert message.type == "message"
    [part] = message.content
    assert part.type == "refusal"
    assert part.refusal
    assert response.output_text == ""

    async with oai.responses.stream(model="gpt-sim", input=QUESTION, extra_headers=refuse) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.refusal.delta"]
    assert "".join(deltas) == part.refusal
    assert final.output[0].type == "message"
    assert final.output[0].content[0].type == "refusal"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (409, openai.ConflictError),
        (422, openai.UnprocessableEntityError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
async def test_error_statuses_raise_the_sdk_classes(
    oai: openai.AsyncOpenAI, status: int, exception: type[openai.APIStatusError]
) -> None:
    with pytest.raises(exception) as caught:
        await oai.responses.create(model="gpt-sim", input=QUESTION, extra_headers={"x-simulator-status": str(status)})
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    assert set(caught.value.body) == {"message", "type", "param", "code"}


async def test_rate_limit_directive_in_the_input_carries_retry_after(
    oai: openai.AsyncOpenAI, sim_log: RequestLog
) -> None:
    items: ResponseInputParam = [{"role": "user", "content": "[simulate status=429 retry-after=2] hello"}]
    with pytest.raises(openai.RateLimitError) as caught:
        await oai.responses.create(model="gpt-sim", input=items)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"
    assert sim_log.last().path == "/v1/responses"


async def test_wrong_key_is_refused(oai: openai.AsyncOpenAI, book: ScenarioBook) -> None:
    book.default = Behaviour(require_key="sk-other")
    with pytest.raises(openai.AuthenticationError) as caught:
        await oai.responses.create(model="gpt-sim", input=QUESTION)
    assert caught.value.code == "invalid_api_key"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "input", "missing_required_parameter"),
        ({"input": 7}, "input", "invalid_type"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role", "invalid_value"),
        ({"input": [{"type": "telepathy"}]}, "input[0].type", "invalid_value"),
        ({"input": [{"role": "user", "content": [{"type": "hologram"}]}]}, "input[0].content[0].type", "invalid_value"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].image_url",
            "missing_required_parameter",
        ),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name", "missing_required_parameter"),
        ({"input": "x", "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice", "invalid_value"),
        ({"input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format.name", "missing_required_parameter"),
        ({"input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort", "invalid_value"),
        ({"input": "x", "store": "yes"}, "store", "invalid_type"),
    ],
)
async def test_bad_requests_are_refused_in_openai_shape(
    oai: openai.AsyncOpenAI, body: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.post("/responses", body={"model": "gpt-sim", **body}, cast_to=object)
    assert (caught.value.param, caught.value.code, caught.value.type) == (param, code, "invalid_request_error")


@pytest.mark.parametrize(
    ("cut_after", "deltas"),
    [(0, []), (2, ["echo:", " What"])],
)
async def test_cut_stream_raises_connection_error(oai: openai.AsyncOpenAI, cut_after: int, deltas: list[str]) -> None:
    events: list[ResponseStreamEvent] = []
    with pytest.raises(openai.APIConnectionError):
        async with oai.responses.stream(
            model="gpt-sim", input=QUESTION, extra_headers={"x-simulator-cut-after-chunks": str(cut_after)}
        ) as stream:
            await collect(stream, events)
    assert events[0].type == "response.created"
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == deltas
    assert events[-1].type == ("response.content_part.added" if cut_after == 0 else "response.output_text.delta")


async def test_mid_stream_error_is_a_response_failed_event(oai: openai.AsyncOpenAI) -> None:
    async with oai.responses.stream(
        model="gpt-sim",
        input=QUESTION,
        extra_headers={"x-simulator-mid-stream-error": "true", "x-simulator-cut-after-chunks": "3"},
    ) as stream:
        events = [event async for event in stream]
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            await stream.get_final_response()
    created, failed = events[0], events[-1]
    assert created.type == "response.created"
    assert failed.type == "response.failed"
    assert failed.sequence_number == len(events) - 1
    assert failed.response.id == created.response.id
    assert failed.response.status == "failed"
    assert failed.response.error is not None
    assert failed.response.error.code == "server_error"
    assert "server had an error" in failed.response.error.message
    assert sum(e.type == "response.output_text.delta" for e in events) == 3


async def test_stream_without_its_terminal_event_has_no_final_response(oai: openai.AsyncOpenAI) -> None:
    async with oai.responses.stream(
        model="gpt-sim", input=QUESTION, extra_headers={"x-simulator-drop-last-events": "1"}
    ) as stream:
        events = [event async for event in stream]
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            await stream.get_final_response()
    assert events[-1].type == "response.output_item.done"


async def test_malformed_event_fails_to_parse(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.responses.create(
        model="gpt-sim", input=QUESTION, stream=True, extra_headers={"x-simulator-malformed": "true"}
    )
    with pytest.raises(json.JSONDecodeError):
        await collect(stream, [])


async def test_slow_first_token(oai: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    stream = await oai.responses.create(
        model="gpt-sim", input="a", stream=True, extra_headers={"x-simulator-ttft-ms": "60"}
    )
    headers_at = time.monotonic() - started
    arrivals = [time.monotonic() - started async for e in stream if e.type == "response.output_text.delta"]
    assert arrivals[0] - headers_at >= 0.05  # the headers come at once, the first token after the TTFT


async def test_azure_dated_and_v1_paths_serve_responses(
    azure: openai.AsyncAzureOpenAI, sim: test_utils.TestServer, sim_log: RequestLog, book: ScenarioBook
) -> None:
    dated = await azure.responses.create(model="my-gpt", input="hello azure")
    assert dated.output_text == "echo: hello azure"
    assert sim_log.last().path == "/openai/responses"
    assert "api-version" in sim_log.last().query

    async with openai.AsyncOpenAI(base_url=str(sim.make_url("/openai/v1")), api_key=KEY, max_retries=0) as v1:
        streamed = v1.responses.stream(model="my-gpt", input="hello azure")
        async with streamed as stream:
            final = await stream.get_final_response()
    assert final.output_text == "echo: hello azure"
    assert sim_log.last().path == "/openai/v1/responses"

    book.deployments = ["other"]
    with pytest.raises(openai.NotFoundError) as caught:
        await azure.responses.create(model="my-gpt", input="hello azure")
    assert caught.value.code == "DeploymentNotFound"


async def test_azure_dated_path_needs_an_api_version(sim: test_utils.TestServer) -> None:
    body = {"model": "my-gpt", "input": "hi"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(sim.make_url("/openai/responses"), json=body, headers={"api-key": KEY}) as resp,
    ):
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "404"
