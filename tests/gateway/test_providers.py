"""The same OpenAI SDK code reaches every provider schema by changing only ``model``.

Vertex AI's two publishers are served beside the examples' providers (``vertex_setup``)."""

from __future__ import annotations

import json

import openai
import pytest
from aiohttp import test_utils
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)
from pydantic import BaseModel

from modelyard_simulator import RequestLog
from tests.gateway.vertex_setup import PATHS as VERTEX_PATHS
from tests.gateway.vertex_setup import vertex_gateway
from tests.harness import GatewayFactory

#: Public model name -> the path the simulated upstream must have been called on.
PROVIDERS = {
    "gpt-4o": "/v1/chat/completions",
    "azure-gpt-4o": "/openai/deployments/gpt-4o-deployment/chat/completions",
    "claude-sonnet": "/v1/messages",
    "gemini-flash": "/v1beta/models/gemini-2.5-flash:generateContent",
    **VERTEX_PATHS,
}
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory, simulator: test_utils.TestServer) -> test_utils.TestServer:
    return await vertex_gateway(gateway_factory, simulator)


@pytest.mark.parametrize("model", PROVIDERS)
async def test_chat(client: openai.AsyncOpenAI, upstream_log: RequestLog, model: str) -> None:
    completion = await client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}],
        max_tokens=50,
    )
    choice = completion.choices[0]
    assert "hello there" in (choice.message.content or "")
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    assert upstream_log.last().path == PROVIDERS[model]


@pytest.mark.parametrize("model", PROVIDERS)
async def test_streaming_with_usage(client: openai.AsyncOpenAI, upstream_log: RequestLog, model: str) -> None:
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "stream these words please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert "stream these words please" in text
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens > 0
    path = upstream_log.last().path
    expected = PROVIDERS[model].replace(":generateContent", ":streamGenerateContent")
    expected = expected.replace(":rawPredict", ":streamRawPredict")
    assert path == expected


@pytest.mark.parametrize("model", PROVIDERS)
async def test_tool_call_round_trip(client: openai.AsyncOpenAI, model: str) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "weather in Oslo? [simulate tool-call=get_weather]"}
    ]
    first = await client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)
    messages += [
        choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]  # the SDK's own echo of its reply
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
        {"role": "user", "content": "thanks"},
    ]
    second = await client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", PROVIDERS)
async def test_streamed_tool_calls(client: openai.AsyncOpenAI, model: str) -> None:
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "weather? [simulate tool-call=get_weather]"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    names, arguments, finish = [], "", None
    async for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                if delta.function and delta.function.name:
                    names.append(delta.function.name)
                arguments += (delta.function.arguments or "") if delta.function else ""
            finish = choice.finish_reason or finish
    assert names == ["get_weather"]
    assert isinstance(json.loads(arguments), dict)
    assert finish == "tool_calls"


@pytest.mark.parametrize("model", ["text-embedding-3-small", "gemini-embedding"])
async def test_embeddings(client: openai.AsyncOpenAI, model: str) -> None:
    floats = await client.embeddings.create(model=model, input=["one", "two"], encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    assert all(len(d.embedding) > 0 for d in floats.data)
    # The SDK asks for base64 by default and decodes it itself: the vectors must survive the round trip.
    decoded = await client.embeddings.create(model=model, input=["one", "two"])
    for base64_item, float_item in zip(decoded.data, floats.data, strict=True):
        assert base64_item.embedding == pytest.approx(float_item.embedding, rel=1e-6)


async def test_embeddings_refused_by_a_chat_only_provider(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.embeddings.create(model="claude-sonnet", input="one")
    assert "embeddings" in caught.value.message


#: The model each OpenAI-family upstream must find in the body: its own name, never the gateway's public one.
UPSTREAM_MODEL = {"gpt-4o": "gpt-4o-2024-08-06", "azure-gpt-4o": "gpt-4o-deployment"}


@pytest.mark.parametrize("model", UPSTREAM_MODEL)
async def test_upstream_bodies_name_the_upstream_model_never_the_public_one(
    client: openai.AsyncOpenAI, upstream_log: RequestLog, model: str
) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    await client.chat.completions.create(model=model, messages=messages)
    async for _ in await client.chat.completions.create(model=model, messages=messages, stream=True):
        pass
    await client.embeddings.create(model=model, input="hello")
    received = list(upstream_log)
    assert [r.body["model"] for r in received] == [UPSTREAM_MODEL[model]] * 3
    assert not any(f'"{model}"' in json.dumps(r.body) for r in received)


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
#: Where each provider's native structured-output switch must appear in the upstream request.
NATIVE_SCHEMA = {
    "gpt-4o": lambda body: body["response_format"]["json_schema"]["schema"],
    "azure-gpt-4o": lambda body: body["response_format"]["json_schema"]["schema"],
    "claude-sonnet": lambda body: body["output_config"]["format"]["schema"],
    "gemini-flash": lambda body: body["generationConfig"]["responseJsonSchema"],
}
NATIVE_SCHEMA.update({"vertex-claude": NATIVE_SCHEMA["claude-sonnet"], "vertex-gemini": NATIVE_SCHEMA["gemini-flash"]})


@pytest.mark.parametrize("model", PROVIDERS)
async def test_structured_output_uses_each_providers_native_mechanism(
    client: openai.AsyncOpenAI, upstream_log: RequestLog, model: str
) -> None:
    completion = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "plan a trip"}],
        response_format={"type": "json_schema", "json_schema": {"name": "trip", "schema": SCHEMA, "strict": True}},
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)
    assert NATIVE_SCHEMA[model](upstream_log.last().body) == SCHEMA


class Stop(BaseModel):
    city: str
    nights: int


class Trip(BaseModel):
    """pydantic puts ``Stop`` under ``$defs``: every provider's structured output must carry the references."""

    title: str
    first: Stop
    last: Stop | None
    stops: list[Stop]


@pytest.mark.parametrize("model", PROVIDERS)
async def test_sdk_parse_fills_nested_models(client: openai.AsyncOpenAI, model: str) -> None:
    prompt = "plan a trip"
    completion = await client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": prompt}], response_format=Trip
    )
    stop = Stop(city=prompt, nights=1)
    assert completion.choices[0].message.parsed == Trip(title=prompt, first=stop, last=stop, stops=[stop])


#: Where each provider's thinking control must appear for ``reasoning_effort="high"``.
NATIVE_REASONING = {
    "gpt-4o": lambda body: body["reasoning_effort"] == "high",
    "azure-gpt-4o": lambda body: body["reasoning_effort"] == "high",
    "claude-sonnet": lambda body: body["thinking"]["type"] == "enabled" and body["thinking"]["budget_tokens"] >= 1024,
    "gemini-flash": lambda body: body["generationConfig"]["thinkingConfig"]["thinkingBudget"] > 0,
}
NATIVE_REASONING.update(
    {"vertex-claude": NATIVE_REASONING["claude-sonnet"], "vertex-gemini": NATIVE_REASONING["gemini-flash"]}
)


@pytest.mark.parametrize("model", PROVIDERS)
async def test_reasoning_effort_maps_to_each_providers_thinking_control(
    client: openai.AsyncOpenAI, upstream_log: RequestLog, model: str
) -> None:
    completion = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "think hard"}], reasoning_effort="high"
    )
    assert completion.choices[0].message.content
    assert NATIVE_REASONING[model](upstream_log.last().body)


@pytest.mark.parametrize("model", ["claude-sonnet"])
async def test_parameter_a_provider_cannot_honour_is_refused_not_dropped(
    client: openai.AsyncOpenAI, model: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], logprobs=True)
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == "logprobs"


@pytest.mark.parametrize("model", PROVIDERS)
async def test_upstream_rate_limit_is_429_with_retry_after(client: openai.AsyncOpenAI, model: str) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi [simulate status=429 retry-after=7]"}]
        )
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize(("status", "expected"), [(500, 502), (503, 503), (529, 503), (504, 504), (401, 502)])
async def test_upstream_failures_map_to_gateway_statuses(
    client: openai.AsyncOpenAI, status: int, expected: int
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model="claude-sonnet", messages=[{"role": "user", "content": f"hi [simulate status={status}]"}]
        )
    assert caught.value.status_code == expected
    assert "upstream anthropic (default/sim-anthropic)" in caught.value.message
    assert "sk-ant-sim" not in caught.value.message


@pytest.mark.parametrize("model", PROVIDERS)
async def test_stream_cut_mid_way_is_an_in_band_error(client: openai.AsyncOpenAI, model: str) -> None:
    stream = await client.chat.completions.create(
        model=model,
        messages=[
            {
                "role": "user",
                "content": "a long answer with many words [simulate cut-after-chunks=2 token-interval-ms=30]",
            }
        ],
        stream=True,
    )
    received: list[str] = []
    with pytest.raises(openai.APIError):
        await collect_text(stream, received)
    assert received  # the client saw the first chunks, then an error rather than a clean end


async def collect_text(stream: openai.AsyncStream[ChatCompletionChunk], into: list[str]) -> None:
    """Append each content delta to ``into`` until the stream ends (or raises)."""
    async for chunk in stream:
        into.extend(choice.delta.content or "" for choice in chunk.choices)
