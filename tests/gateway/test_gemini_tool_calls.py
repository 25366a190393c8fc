"""``parallel_tool_calls: false`` on Gemini routes, through the OpenAI SDK.

Gemini has no such switch, so the gateway allows only the named function when ``tool_choice`` names one, and
keeps only the first call of an answer. LangChain's ``with_structured_output(method="function_calling")``
sends exactly that request. A Gemini upstream that calls two functions at once is a small server here: the
simulator answers with one call at most.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import orjson
import pytest
from aiohttp import test_utils, web
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from modelyard_simulator import RequestLog
from tests.harness import DEMO_KEY, GatewayFactory, start_server

WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Oslo and Bergen?"}]
CITIES = ["Oslo", "Bergen"]


def gemini_answer(*, final: bool = True) -> dict[str, Any]:
    """One ``GenerateContentResponse`` calling ``get_weather`` for both cities at once."""
    parts = [{"functionCall": {"name": "get_weather", "args": {"city": city}}} for city in CITIES]
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if final:
        candidate["finishReason"] = "STOP"
    usage = {"promptTokenCount": 8, "candidatesTokenCount": 10, "totalTokenCount": 18}
    return {"candidates": [candidate], "usageMetadata": usage, "responseId": "r1", "modelVersion": "gemini-x"}


async def generate(request: web.Request) -> web.StreamResponse:
    if request.match_info["action"] == "generateContent":
        return web.json_response(gemini_answer())
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: " + orjson.dumps(gemini_answer()) + b"\r\n\r\n")
    return response


@pytest.fixture
async def two_calls_gemini() -> AsyncIterator[test_utils.TestServer]:
    app = web.Application()
    app.router.add_post("/v1beta/models/{model}:{action}", generate)
    server = await start_server(app)
    yield server
    await server.close()


@pytest.fixture
async def sdk(
    gateway_factory: GatewayFactory, two_calls_gemini: test_utils.TestServer
) -> AsyncIterator[openai.AsyncOpenAI]:
    credential = {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ProviderCredential",
        "metadata": {"name": "parallel-gemini", "namespace": "default"},
        "spec": {
            "provider": "gemini",
            "baseURL": str(two_calls_gemini.make_url("/v1beta")),
            "secretRef": {"name": "simulator-keys", "key": "gemini"},
        },
    }
    route = {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": "parallel-gemini", "namespace": "default"},
        "spec": {"model": "parallel-gemini", "targets": [{"credentialRef": {"name": "parallel-gemini"}, "model": "x"}]},
    }
    gateway = await gateway_factory(credential, route)
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as client:
        yield client


async def called_cities(sdk: openai.AsyncOpenAI, *, stream: bool, **extra: Any) -> list[str]:
    """The cities of the tool calls the client got, whole or reassembled from the stream."""
    if not stream:
        completion = await sdk.chat.completions.create(model="parallel-gemini", messages=ASK, tools=[WEATHER], **extra)
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        calls = choice.message.tool_calls or []
        return [orjson.loads(call.function.arguments)["city"] for call in calls if call.type == "function"]
    arguments: dict[int, str] = {}
    finish = None
    chunks = await sdk.chat.completions.create(
        model="parallel-gemini", messages=ASK, tools=[WEATHER], stream=True, **extra
    )
    async for chunk in chunks:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                piece = delta.function.arguments if delta.function else None
                arguments[delta.index] = arguments.get(delta.index, "") + (piece or "")
    assert finish == "tool_calls"
    return [orjson.loads(arguments[index])["city"] for index in sorted(arguments)]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_parallel_calls_by_default(sdk: openai.AsyncOpenAI, *, stream: bool) -> None:
    assert await called_cities(sdk, stream=stream) == CITIES


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_no_parallel_tool_calls_keeps_the_first_call(sdk: openai.AsyncOpenAI, *, stream: bool) -> None:
    assert await called_cities(sdk, stream=stream, parallel_tool_calls=False) == CITIES[:1]


async def test_langchain_structured_output_request_is_served(
    client: openai.AsyncOpenAI, upstream_log: RequestLog
) -> None:
    """A named function and ``parallel_tool_calls: false``: Gemini may call that function only."""
    completion = await client.chat.completions.create(
        model="gemini-flash",
        messages=[{"role": "user", "content": "Weather in Oslo? [simulate tool-call=get_weather]"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    calls = completion.choices[0].message.tool_calls or []
    assert [call.function.name for call in calls if call.type == "function"] == ["get_weather"]
    config = upstream_log.last().body["toolConfig"]["functionCallingConfig"]
    assert config == {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}


@pytest.mark.parametrize("disabled", [False, True])
async def test_a_messages_client_may_disable_parallel_tool_use(sdk: openai.AsyncOpenAI, *, disabled: bool) -> None:
    """Anthropic's ``tool_choice.disable_parallel_tool_use`` means what ``parallel_tool_calls: false`` does."""
    async with anthropic.AsyncAnthropic(base_url=str(sdk.base_url).removesuffix("/v1/"), api_key=DEMO_KEY) as claude:
        message = await claude.messages.create(
            model="parallel-gemini",
            max_tokens=100,
            messages=[{"role": "user", "content": "Weather in Oslo and Bergen?"}],
            tools=[{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}],
            tool_choice={"type": "auto", "disable_parallel_tool_use": disabled},
        )
    cities = [block.input["city"] for block in message.content if block.type == "tool_use"]
    assert cities == (CITIES[:1] if disabled else CITIES)
