"""Bedrock routes through the official SDKs: Converse, ConverseStream and InvokeModel, every call SigV4-signed
and checked by the simulator with botocore, as AWS checks it."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import test_utils
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from modelyard_simulator import RequestLog
from modelyard_simulator.aws_keys import TEST_ACCESS_KEY_ID
from tests.gateway.bedrock_setup import bedrock_gateway, sdk
from tests.harness import DEMO_KEY

__all__ = ["bedrock_gateway", "sdk"]  # fixtures

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


async def test_chat_is_a_signed_converse_call(sdk: openai.AsyncOpenAI, upstream_log: RequestLog) -> None:
    completion = await sdk.chat.completions.create(
        model="bedrock-claude",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}],
        max_tokens=50,
    )
    choice = completion.choices[0]
    assert choice.message.content == "echo: hello there"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    sent = upstream_log.last()
    assert sent.path == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/converse"
    assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY_ID}/")
    assert "/us-east-1/bedrock/aws4_request" in sent.headers["authorization"]
    assert sent.body["system"] == [{"text": "Be brief."}]
    assert sent.body["inferenceConfig"] == {"maxTokens": 50}


async def test_stream_with_usage(sdk: openai.AsyncOpenAI, upstream_log: RequestLog) -> None:
    stream = await sdk.chat.completions.create(
        model="bedrock-nova",
        messages=[{"role": "user", "content": "stream these words please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "echo: stream these words please"
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens == 5
    assert upstream_log.last().path == "/model/amazon.nova-pro-v1:0/converse-stream"


async def test_tool_call_round_trip(sdk: openai.AsyncOpenAI, upstream_log: RequestLog) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "weather in Oslo? [simulate tool-call=get_weather]"}
    ]
    first = await sdk.chat.completions.create(model="bedrock-nova", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert call.id.startswith("tooluse_")
    messages += [
        choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]  # the SDK's own echo of its reply
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    second = await sdk.chat.completions.create(model="bedrock-nova", messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == 'echo: {"temp_c": 21}'
    turns = upstream_log.last().body["messages"]
    assert turns[1]["content"] == [{"toolUse": {"toolUseId": call.id, "name": "get_weather", "input": {}}}]
    assert turns[2]["content"][0]["toolResult"]["toolUseId"] == call.id


async def test_streamed_tool_call_accumulates_in_the_sdk(sdk: openai.AsyncOpenAI) -> None:
    """The SDK's stream helper rebuilds the call from ConverseStream's toolUse start and input deltas."""
    prompt = 'Oslo? [simulate tool-call=\'{"name":"get_weather","arguments":{"city":"Oslo"}}\']'
    async with sdk.chat.completions.stream(
        model="bedrock-nova", messages=[{"role": "user", "content": prompt}], tools=[WEATHER]
    ) as stream:
        final = await stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"})]


async def test_an_inline_image_is_sent_as_bytes(sdk: openai.AsyncOpenAI, upstream_log: RequestLog) -> None:
    content: Any = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    await sdk.chat.completions.create(model="bedrock-nova", messages=[{"role": "user", "content": content}])
    blocks = upstream_log.last().body["messages"][0]["content"]
    assert blocks[1] == {"image": {"format": "png", "source": {"bytes": PNG}}}


async def test_a_web_image_is_a_bad_request(sdk: openai.AsyncOpenAI, upstream_log: RequestLog) -> None:
    content: Any = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="bedrock-nova", messages=[{"role": "user", "content": content}])
    assert "data: URLs" in caught.value.message
    assert not len(upstream_log)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_reasoning_round_trips_with_its_signature(sdk: openai.AsyncOpenAI, *, stream: bool) -> None:
    """Claude's signed reasoning comes back to the client and, sent back, is accepted by Bedrock."""
    ask: list[ChatCompletionMessageParam] = [{"role": "user", "content": "weather? [simulate tool-call=get_weather]"}]
    extra: dict[str, Any] = {"reasoning_effort": "low", "max_completion_tokens": 4000, "tools": [WEATHER]}
    reply: dict[str, Any]
    if stream:
        chunks = await sdk.chat.completions.create(model="bedrock-claude", messages=ask, stream=True, **extra)
        reasoning, kept, calls = "", [], []
        async for chunk in chunks:
            delta = chunk.choices[0].delta if chunk.choices else None
            if delta is None:
                continue
            reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
            kept += ((delta.model_extra or {}).get("extra_content") or {}).get("bedrock", {}).get("thinking_blocks", [])
            calls += [c.model_dump(exclude_none=True) for c in delta.tool_calls or []]
        blocks = [{k: v for k, v in block.items() if k != "index"} for block in kept]
        call = {"id": calls[0]["id"], "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        reply = {"role": "assistant", "tool_calls": [call], "extra_content": {"bedrock": {"thinking_blocks": blocks}}}
    else:
        first = await sdk.chat.completions.create(model="bedrock-claude", messages=ask, **extra)
        reply = first.choices[0].message.model_dump(exclude_none=True)
        reasoning = reply["reasoning_content"]
        blocks = reply["extra_content"]["bedrock"]["thinking_blocks"]
    assert reasoning == "The user said: weather?"
    assert blocks == [{"type": "thinking", "thinking": reasoning, "signature": blocks[0]["signature"]}]
    tool_id = reply["tool_calls"][0]["id"]
    follow_up = [*ask, reply, {"role": "tool", "tool_call_id": tool_id, "content": "sunny"}]
    second = await sdk.chat.completions.create(model="bedrock-claude", messages=follow_up, **extra)  # type: ignore[arg-type]
    assert second.choices[0].message.content == "echo: sunny"


async def test_a_tampered_signature_is_refused_by_bedrock(sdk: openai.AsyncOpenAI) -> None:
    kept = [{"type": "thinking", "thinking": "I changed this.", "signature": "c2lnbmF0dXJl"}]
    history: Any = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "ok", "extra_content": {"bedrock": {"thinking_blocks": kept}}},
        {"role": "user", "content": "again"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="bedrock-claude", messages=history)
    assert "signature" in caught.value.message


@pytest.mark.parametrize("model", ["bedrock-titan", "bedrock-cohere"])
async def test_embeddings_floats_and_base64(sdk: openai.AsyncOpenAI, model: str, upstream_log: RequestLog) -> None:
    texts = ["one"] if model == "bedrock-titan" else ["one", "two"]
    floats = await sdk.embeddings.create(model=model, input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == list(range(len(texts)))
    assert all(len(d.embedding) == 1024 for d in floats.data)
    assert upstream_log.last().path.endswith("/invoke")
    # The SDK asks for base64 by default and decodes it itself: the gateway encoded what Bedrock sent as floats.
    decoded = await sdk.embeddings.create(model=model, input=texts)
    for base64_item, float_item in zip(decoded.data, floats.data, strict=True):
        assert base64_item.embedding == pytest.approx(float_item.embedding, rel=1e-6)


async def test_titan_dimensions_and_its_one_input(sdk: openai.AsyncOpenAI) -> None:
    small = await sdk.embeddings.create(model="bedrock-titan", input="one", dimensions=256, encoding_format="float")
    assert len(small.data[0].embedding) == 256
    assert small.usage.prompt_tokens == 1
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.embeddings.create(model="bedrock-titan", input=["one", "two"])
    assert "one input" in caught.value.message


async def test_a_bedrock_api_key_is_sent_as_a_bearer_token_unsigned(
    sdk: openai.AsyncOpenAI, upstream_log: RequestLog
) -> None:
    completion = await sdk.chat.completions.create(model="bedrock-keyed", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "echo: hi"
    headers = upstream_log.last().headers
    assert headers["authorization"].startswith("Bearer ABSK")
    assert "x-amz-date" not in headers


async def test_messages_clients_reach_bedrock_whole_and_streamed(
    bedrock_gateway: test_utils.TestServer, upstream_log: RequestLog
) -> None:
    url = str(bedrock_gateway.make_url(""))
    async with anthropic.AsyncAnthropic(base_url=url, api_key=DEMO_KEY, max_retries=0) as claude:
        message = await claude.messages.create(
            model="bedrock-claude", max_tokens=100, messages=[{"role": "user", "content": "hello there"}]
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == "echo: hello there"
        assert message.usage.output_tokens == 3
        async with claude.messages.stream(
            model="bedrock-claude", max_tokens=100, messages=[{"role": "user", "content": "stream this"}]
        ) as stream:
            text = "".join([piece async for piece in stream.text_stream])
            final = await stream.get_final_message()
    assert text == "echo: stream this"
    assert final.stop_reason == "end_turn"
    assert upstream_log.last().path.endswith("/converse-stream")


async def test_responses_clients_reach_bedrock_whole_and_streamed(sdk: openai.AsyncOpenAI) -> None:
    response = await sdk.responses.create(model="bedrock-nova", input="hello there", store=False)
    assert response.output_text == "echo: hello there"
    async with sdk.responses.stream(model="bedrock-nova", input="stream this", store=False) as stream:
        final = await stream.get_final_response()
    assert final.output_text == "echo: stream this"
    assert final.usage is not None
    assert final.usage.output_tokens == 3
