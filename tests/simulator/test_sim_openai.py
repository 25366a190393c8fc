"""The official OpenAI SDK against the simulator: proof the wire format is faithful."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable
from typing import Any, TypeVar

import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import BaseModel

from modelyard_simulator import Behaviour, RequestLog, ScenarioBook, ToolCall

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the weather in Oslo?"}]
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
T = TypeVar("T")


async def drain(stream: AsyncIterable[T], into: list[T]) -> None:
    """Collect items until the stream ends or fails, so a test can inspect what came first."""
    async for item in stream:
        into.append(item)


TOOL_HEADER = {"x-simulator-tool-call": json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})}


async def test_chat_completion_echoes_the_prompt_with_usage_and_headers(oai: openai.AsyncOpenAI) -> None:
    raw = await oai.chat.completions.with_raw_response.create(model="gpt-sim", messages=USER)
    completion = raw.parse()

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert abs(completion.created - time.time()) < 60
    assert completion.model == "gpt-sim"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "echo: What is the weather in Oslo?"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 6
    assert completion.usage.completion_tokens == 7
    assert completion.usage.total_tokens == 13
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-ratelimit-remaining-requests"] == "9999"
    assert raw.headers["openai-version"] == "2020-10-01"


async def test_stream_with_include_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-sim",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: What is the weather in Oslo?"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert last.usage.completion_tokens == len(content_chunks) == 7
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


async def test_stream_without_include_usage_has_no_usage_chunk(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(model="gpt-sim", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_tool_call_non_stream(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.create(
        model="gpt-sim",
        messages=USER,
        tools=TOOLS,
        extra_headers=TOOL_HEADER,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_")
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}


async def test_tool_call_stream_fragments_reassemble(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-sim",
        messages=USER,
        tools=TOOLS,
        stream=True,
        extra_headers=TOOL_HEADER,
    )
    chunks: list[ChatCompletionChunk] = [chunk async for chunk in stream]
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id is not None
    assert deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    assert all(d.index == 0 and d.id is None for d in deltas[1:])
    arguments = "".join((d.function.arguments or "") for d in deltas if d.function)
    assert json.loads(arguments) == {"city": "Oslo"}
    assert len(deltas) > 2
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_after_a_tool_result_the_model_answers_with_text(oai: openai.AsyncOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "4C and sunny"},
    ]
    completion = await oai.chat.completions.create(
        model="gpt-sim", messages=messages, tools=TOOLS, extra_headers=TOOL_HEADER
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "echo: 4C and sunny"


async def test_json_schema_response_format_returns_valid_json(oai: openai.AsyncOpenAI) -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
    }
    completion = await oai.chat.completions.create(
        model="gpt-sim",
        messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": schema}},
    )
    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"city": "What is the weather in Oslo?", "celsius": 1.0}


class Address(BaseModel):
    city: str
    zip: int


class Person(BaseModel):
    """pydantic puts ``Address`` under ``$defs``; the SDK's strict schema keeps the ``$ref``s."""

    name: str
    home: Address
    work: Address | None
    past: list[Address]


async def test_parse_fills_nested_models_behind_refs(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.parse(model="gpt-sim", messages=USER, response_format=Person)
    text = "What is the weather in Oslo?"
    address = Address(city=text, zip=1)
    assert completion.choices[0].message.parsed == Person(name=text, home=address, work=address, past=[address])


async def test_embeddings_float_and_base64_agree(oai: openai.AsyncOpenAI) -> None:
    as_float = await oai.embeddings.create(model="emb", input=["alpha", "beta"], encoding_format="float")
    as_default = await oai.embeddings.create(model="emb", input=["alpha", "beta"])  # SDK asks for base64
    assert [d.index for d in as_float.data] == [0, 1]
    assert len(as_float.data[0].embedding) == 16
    for exact, decoded in zip(as_float.data, as_default.data, strict=True):
        assert decoded.embedding == pytest.approx(exact.embedding, abs=1e-6)
    assert as_float.data[0].embedding != as_float.data[1].embedding
    assert as_float.usage.prompt_tokens == as_float.usage.total_tokens == 2

    sized = await oai.embeddings.create(model="emb", input="alpha", dimensions=5, encoding_format="float")
    assert len(sized.data[0].embedding) == 5
    assert sum(v * v for v in sized.data[0].embedding) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("endpoint", "body", "param", "got"),
    [
        ("/chat/completions", {"messages": USER, "stop": True}, "stop", "a boolean"),
        ("/chat/completions", {"messages": USER, "max_tokens": 1.5}, "max_tokens", "a decimal"),
        ("/chat/completions", {"messages": USER, "temperature": True}, "temperature", "a boolean"),
        ("/chat/completions", {"messages": USER, "response_format": "json"}, "response_format", "a string"),
        ("/embeddings", {"input": 12}, "input", None),
        ("/embeddings", {"input": "x", "dimensions": {"n": 3}}, "dimensions", "an object"),
    ],
)
async def test_fields_of_the_wrong_type_are_refused_as_openai_does(
    oai: openai.AsyncOpenAI, endpoint: str, body: dict[str, Any], param: str, got: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.post(endpoint, body={"model": "gpt-sim", **body}, cast_to=object)
    assert caught.value.param == param
    if got is not None:
        assert caught.value.code == "invalid_type"
        assert caught.value.message.endswith(f"but got {got} instead.")


async def test_models_list(oai: openai.AsyncOpenAI, book: ScenarioBook) -> None:
    book.models = {"gpt-a": Behaviour(), "gpt-*": Behaviour()}
    assert [m.id async for m in oai.models.list()] == ["gpt-a"]


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "invalid_request_error"),
        (403, openai.PermissionDeniedError, "invalid_request_error"),
        (404, openai.NotFoundError, "invalid_request_error"),
        (409, openai.ConflictError, "invalid_request_error"),
        (422, openai.UnprocessableEntityError, "invalid_request_error"),
        (429, openai.RateLimitError, "requests"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
async def test_error_statuses_map_to_sdk_exceptions(
    oai: openai.AsyncOpenAI, status: int, exception: type[openai.APIStatusError], error_type: str
) -> None:
    with pytest.raises(exception) as caught:
        await oai.chat.completions.create(
            model="gpt-sim",
            messages=USER,
            extra_headers={"x-simulator-status": str(status)},
        )
    assert caught.value.status_code == status
    assert caught.value.type == error_type
    assert caught.value.response.headers["x-request-id"].startswith("req_")


async def test_rate_limit_carries_retry_after(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await oai.chat.completions.create(
            model="gpt-sim",
            messages=USER,
            extra_headers={"x-simulator-status": "429", "x-simulator-retry-after": "2"},
        )
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert caught.value.code == "rate_limit_exceeded"
    assert "try again in 2s" in caught.value.message


async def test_directive_in_the_prompt_scripts_an_outage(oai: openai.AsyncOpenAI, sim_log: RequestLog) -> None:
    prompt: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "[simulate status=503 retry-after=1] hello"}
    ]
    with pytest.raises(openai.InternalServerError) as caught:
        await oai.chat.completions.create(model="gpt-sim", messages=prompt)
    assert caught.value.status_code == 503
    assert caught.value.response.headers["retry-after"] == "1"
    assert sim_log.last().body["messages"] == prompt


async def test_wrong_key_is_rejected_natively(oai: openai.AsyncOpenAI, book: ScenarioBook, api_key: str) -> None:
    book.default = Behaviour(require_key="sk-other")
    with pytest.raises(openai.AuthenticationError) as caught:
        await oai.chat.completions.create(model="gpt-sim", messages=USER)
    assert caught.value.code == "invalid_api_key"
    assert api_key not in caught.value.message

    book.default = Behaviour(require_key=api_key)
    completion = await oai.chat.completions.create(model="gpt-sim", messages=USER)
    assert completion.choices[0].message.content


async def test_cut_stream_raises_in_the_sdk(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-sim",
        messages=USER,
        stream=True,
        extra_headers={"x-simulator-cut-after-chunks": "2"},
    )
    chunks: list[ChatCompletionChunk] = []
    with pytest.raises(openai.APIConnectionError):
        await drain(stream, chunks)
    assert [c.choices[0].delta.content for c in chunks] == ["", "echo:", " What"]


async def test_mid_stream_error_raises_api_error(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-sim",
        messages=USER,
        stream=True,
        extra_headers={"x-simulator-mid-stream-error": "true", "x-simulator-cut-after-chunks": "3"},
    )
    chunks: list[ChatCompletionChunk] = []
    with pytest.raises(openai.APIError, match="server had an error"):
        await drain(stream, chunks)
    assert len(chunks) == 4  # role chunk + 3 content chunks


async def test_malformed_stream_event_fails_to_parse(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-sim",
        messages=USER,
        stream=True,
        extra_headers={"x-simulator-malformed": "true"},
    )
    with pytest.raises(json.JSONDecodeError):
        await drain(stream, [])


async def test_ttft_and_token_interval_pace_the_stream(oai: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    stream = await oai.chat.completions.create(
        model="gpt-sim",
        messages=[{"role": "user", "content": "a b"}],
        stream=True,
        extra_headers={"x-simulator-ttft-ms": "40", "x-simulator-token-interval-ms": "15"},
    )
    headers_at = time.monotonic() - started
    arrivals = [time.monotonic() - started async for c in stream if c.choices and c.choices[0].delta.content]
    assert arrivals[0] - headers_at >= 0.03  # headers come first, the first token after the TTFT
    assert arrivals[0] >= 0.04
    assert arrivals[-1] - arrivals[0] >= 0.03  # three tokens, two intervals


async def test_max_tokens_truncates_with_length(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.create(
        model="gpt-sim",
        messages=USER,
        max_completion_tokens=2,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "echo: What"


async def test_scripted_reply_and_latency(oai: openai.AsyncOpenAI, book: ScenarioBook) -> None:
    book.models = {"slow": Behaviour(latency_ms=40, reply="fixed answer")}
    started = time.monotonic()
    completion = await oai.chat.completions.create(model="slow", messages=USER)
    assert time.monotonic() - started >= 0.04
    assert completion.choices[0].message.content == "fixed answer"


async def test_tool_call_from_scenario_book(oai: openai.AsyncOpenAI, book: ScenarioBook) -> None:
    book.default = Behaviour(tool_call=ToolCall(name="get_weather", arguments={"city": "Bergen"}))
    completion = await oai.chat.completions.create(model="m", messages=USER, tools=TOOLS)
    plain = await oai.chat.completions.create(model="m", messages=USER)
    tool_calls = completion.choices[0].message.tool_calls
    assert tool_calls is not None
    assert tool_calls[0].type == "function"
    assert json.loads(tool_calls[0].function.arguments) == {"city": "Bergen"}
    assert plain.choices[0].message.tool_calls is None
