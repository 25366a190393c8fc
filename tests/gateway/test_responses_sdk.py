"""``POST /v1/responses`` through the official openai SDK (``responses.create``/``stream``/``parse``) for every
provider family the simulator plays: native for OpenAI and Azure OpenAI, through each chat adapter otherwise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp import test_utils
from openai.types.responses import FunctionToolParam, Response, ResponseInputParam
from pydantic import BaseModel

from modelyard_simulator import RequestLog
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import SCENARIOS
from tests.gateway.test_messages_failures import MANIFESTS as FALLOVER_ROUTES
from tests.harness import DEMO_KEY

#: A route to an OpenAI-compatible server (vLLM and the like): served through its chat adapter.
COMPAT_DOCS: list[dict[str, Any]] = [
    {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ProviderCredential",
        "metadata": {"name": "sim-compat", "namespace": "default"},
        "spec": {"provider": "openai-compatible", "baseURL": "{simulator}/v1"},
    },
    {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": "compat-model", "namespace": "default"},
        "spec": {"model": "compat-model", "targets": [{"credentialRef": {"name": "sim-compat"}, "model": "llama-3"}]},
    },
]
#: Public model -> the upstream path a Responses request must reach.
CHAINED = {
    "compat-model": "/v1/chat/completions",
    "claude-sonnet": "/v1/messages",
    "gemini-flash": "/v1beta/models/gemini-2.5-flash:generateContent",
}
NATIVE = {"gpt-4o": "/v1/responses", "azure-gpt-4o": "/openai/v1/responses"}
PROVIDERS = {**CHAINED, **NATIVE}
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}


@pytest.fixture
async def client(gateway_factory: Any, simulator: test_utils.TestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    base = str(simulator.make_url("")).rstrip("/")
    docs = json.loads(json.dumps(COMPAT_DOCS).replace("{simulator}", base))
    gateway = await gateway_factory(*docs)
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as sdk:
        yield sdk


def upstream_path(log: RequestLog) -> str:
    return log.last().path.replace(":streamGenerateContent", ":generateContent")


@pytest.mark.parametrize("model", PROVIDERS)
async def test_text(client: openai.AsyncOpenAI, upstream_log: RequestLog, model: str) -> None:
    response = await client.responses.create(
        model=model, instructions="Be brief.", input="hello there", max_output_tokens=50, store=False
    )
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert "hello there" in response.output_text
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens > 0
    assert upstream_path(upstream_log) == PROVIDERS[model]


@pytest.mark.parametrize("model", PROVIDERS)
async def test_streamed_text_accumulates_into_the_final_response(
    client: openai.AsyncOpenAI, upstream_log: RequestLog, model: str
) -> None:
    deltas: list[str] = []
    async with client.responses.stream(model=model, input="stream these words please") as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = await stream.get_final_response()
    assert len(deltas) > 1
    assert final.output_text == "".join(deltas)
    assert "stream these words please" in final.output_text
    assert final.usage is not None
    assert final.usage.output_tokens > 0
    assert upstream_path(upstream_log) == PROVIDERS[model]


def function_call(response: Response) -> Any:
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1
    return calls[0]


@pytest.mark.parametrize("model", PROVIDERS)
async def test_function_tool_round_trip(client: openai.AsyncOpenAI, model: str) -> None:
    history: ResponseInputParam = [{"role": "user", "content": "weather in Oslo? [simulate tool-call=get_weather]"}]
    first = await client.responses.create(model=model, input=history, tools=[WEATHER], store=False)
    call = function_call(first)
    assert call.name == "get_weather"
    assert isinstance(json.loads(call.arguments), dict)
    history += [item.model_dump(exclude_none=True) for item in first.output]  # type: ignore[misc]
    history += [
        {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 21}'},
        {"role": "user", "content": "thanks"},
    ]
    second = await client.responses.create(model=model, input=history, tools=[WEATHER], store=False)
    assert second.status == "completed"
    assert second.output_text


@pytest.mark.parametrize("model", PROVIDERS)
async def test_streamed_function_call(client: openai.AsyncOpenAI, model: str) -> None:
    arguments = ""
    async with client.responses.stream(
        model=model, input="weather? [simulate tool-call=get_weather]", tools=[WEATHER]
    ) as stream:
        async for event in stream:
            if event.type == "response.function_call_arguments.delta":
                arguments += event.delta
        final = await stream.get_final_response()
    call = function_call(final)
    assert call.name == "get_weather"
    assert call.arguments == arguments
    assert isinstance(json.loads(arguments), dict)


class Stop(BaseModel):
    city: str
    nights: int


class Trip(BaseModel):
    title: str
    first: Stop
    stops: list[Stop]


@pytest.mark.parametrize("model", PROVIDERS)
async def test_structured_output_json_schema(client: openai.AsyncOpenAI, model: str) -> None:
    prompt = "plan a trip"
    stop = Stop(city=prompt, nights=1)
    expected = Trip(title=prompt, first=stop, stops=[stop])
    parsed = await client.responses.parse(model=model, input=prompt, text_format=Trip)
    assert parsed.output_parsed == expected
    async with client.responses.stream(model=model, input=prompt, text_format=Trip) as stream:
        final = await stream.get_final_response()
    assert final.output_parsed == expected


@pytest.mark.parametrize("model", PROVIDERS)
async def test_upstream_rate_limit_is_a_rate_limit_error(client: openai.AsyncOpenAI, model: str) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await client.responses.create(model=model, input="hi [simulate status=429 retry-after=7]")
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"


async def test_a_malformed_body_is_a_bad_request(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="claude-sonnet", input=[{"role": "robot", "content": "hi"}])  # type: ignore[list-item,misc]
    assert caught.value.param == "input"


@pytest.mark.parametrize("model", CHAINED)
async def test_a_hosted_tool_is_refused_where_chat_serves_the_route(client: openai.AsyncOpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model=model, input="news?", tools=[{"type": "web_search"}])
    assert (caught.value.code, caught.value.param) == ("unsupported_parameter", "tools")
    assert "'web_search'" in caught.value.message


@pytest.mark.parametrize("model", PROVIDERS)
async def test_a_stream_cut_after_the_commit_point_ends_with_the_failure_event(
    client: openai.AsyncOpenAI, model: str
) -> None:
    deltas: list[str] = []
    prompt = "a long answer with many words [simulate cut-after-chunks=2 token-interval-ms=30]"
    with pytest.raises(openai.APIError) as caught:
        await collect_text(client.responses.stream(model=model, input=prompt), deltas)
    assert deltas  # the client saw the first words, then an error rather than a clean end
    assert "upstream" in caught.value.message


async def collect_text(manager: Any, into: list[str]) -> None:
    """Append each text delta of the stream ``manager`` opens to ``into`` until it ends (or raises)."""
    async with manager as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                into.append(event.delta)


#: What each native upstream must find as ``model``: its own name (Azure: the deployment), never the public one.
NATIVE_UPSTREAM_MODEL = {"gpt-4o": "gpt-4o-2024-08-06", "azure-gpt-4o": "gpt-4o-deployment"}


@pytest.mark.parametrize("model", NATIVE)
async def test_a_native_upstream_gets_the_clients_body_with_its_model_and_store_false(
    client: openai.AsyncOpenAI, upstream_log: RequestLog, model: str
) -> None:
    fields: dict[str, Any] = {"instructions": "Be brief.", "metadata": {"team": "search"}, "max_output_tokens": 20}
    await client.responses.create(model=model, input="hello", store=False, **fields)
    assert upstream_log.last().body == {
        "model": NATIVE_UPSTREAM_MODEL[model], "input": "hello", **fields, "store": False
    }  # fmt: skip
    # A conversation the gateway keeps: the same, with the input as the items it keeps.
    await client.responses.create(model=model, input="hello", **fields)
    assert upstream_log.last().body == {
        "model": NATIVE_UPSTREAM_MODEL[model],
        "input": [{"type": "message", "role": "user", "content": "hello"}],
        **fields,
        "store": False,
    }


@pytest.mark.parametrize(
    ("model", "served_by"), [("claude-then-gpt", "steady-gpt"), ("gpt-then-claude", "steady-claude")]
)
async def test_a_stream_cut_before_the_commit_point_falls_over(
    gateway_factory: Any, simulator: test_utils.TestServer, upstream_log: RequestLog, model: str, served_by: str
) -> None:
    """Nothing reached the client yet: the next target answers, natively or through Chat, whichever failed."""
    gateway = await gateway_factory(*FALLOVER_ROUTES)
    for cut in ("cut-claude", "cut-gpt"):
        simulator.app[SCENARIOS].models[cut] = Behaviour().overlay({"cut_after_chunks": 0})
    async with (
        openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as client,
        client.responses.stream(model=model, input="fall over please", store=False) as stream,
    ):
        final = await stream.get_final_response()
    assert "fall over please" in final.output_text
    assert final.status == "completed"
    response = stream._response
    headers = response.headers
    assert (headers["x-modelyard-upstream-model"], headers["x-modelyard-attempts"]) == (served_by, "2")
