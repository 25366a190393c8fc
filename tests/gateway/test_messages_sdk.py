"""Anthropic's SDK against the gateway's ``/v1/messages``, served by every provider family the simulator plays:
Anthropic by pass-through, the OpenAI family, Azure and Gemini through the Messages<->Chat codec."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from aiohttp import test_utils
from anthropic.types import Message, MessageParam, ToolParam

from modelyard_simulator import RequestLog
from tests.harness import DEMO_KEY

#: Public model name -> the path the simulated upstream must have been called on.
PROVIDERS = {
    "gpt-4o": "/v1/chat/completions",
    "azure-gpt-4o": "/openai/deployments/gpt-4o-deployment/chat/completions",
    "claude-sonnet": "/v1/messages",
    "gemini-flash": "/v1beta/models/gemini-2.5-flash:generateContent",
}
WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
async def claude(gateway: test_utils.TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The official Anthropic SDK pointed at the gateway, with retries off so failures show as they are."""
    async with anthropic.AsyncAnthropic(base_url=str(gateway.make_url("")), api_key=DEMO_KEY, max_retries=0) as sdk:
        yield sdk


def text_of(message: Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


@pytest.mark.parametrize("model", PROVIDERS)
async def test_create(claude: anthropic.AsyncAnthropic, upstream_log: RequestLog, model: str) -> None:
    message = await claude.messages.create(
        model=model,
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert message.type == "message"
    assert message.id.startswith("msg_")
    assert "hello there" in text_of(message)
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    assert upstream_log.last().path == PROVIDERS[model]


@pytest.mark.parametrize("model", PROVIDERS)
async def test_sync_client(gateway: test_utils.TestServer, model: str) -> None:
    def call() -> Message:
        with anthropic.Anthropic(base_url=str(gateway.make_url("")), api_key=DEMO_KEY, max_retries=0) as sdk:
            return sdk.messages.create(
                model=model, max_tokens=64, messages=[{"role": "user", "content": "from a thread"}]
            )

    message = await asyncio.to_thread(call)  # the gateway runs on this loop: the sync client may not block it
    assert "from a thread" in text_of(message)


@pytest.mark.parametrize("model", PROVIDERS)
async def test_stream(claude: anthropic.AsyncAnthropic, upstream_log: RequestLog, model: str) -> None:
    async with claude.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "stream these words please"}]
    ) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "stream these words please" in "".join(texts)
    assert len(texts) > 1  # streamed in pieces, not one block at the end
    assert text_of(final) == "".join(texts)
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0
    assert final.usage.output_tokens > 0
    assert upstream_log.last().path == PROVIDERS[model].replace(":generateContent", ":streamGenerateContent")


@pytest.mark.parametrize("model", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip(claude: anthropic.AsyncAnthropic, model: str, *, stream: bool) -> None:
    messages: list[MessageParam] = [{"role": "user", "content": "weather in Oslo? [simulate tool-call=get_weather]"}]
    first: Message
    if stream:
        async with claude.messages.stream(model=model, max_tokens=256, messages=messages, tools=[WEATHER_TOOL]) as s:
            first = await s.get_final_message()
    else:
        first = await claude.messages.create(model=model, max_tokens=256, messages=messages, tools=[WEATHER_TOOL])
    assert first.stop_reason == "tool_use"
    calls = [block for block in first.content if block.type == "tool_use"]
    assert [call.name for call in calls] == ["get_weather"]
    assert isinstance(calls[0].input, dict)
    messages += [
        {"role": "assistant", "content": first.content},  # the SDK's own blocks, sent back as they came
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "21 C, sunny"}]},
    ]
    second = await claude.messages.create(model=model, max_tokens=256, messages=messages, tools=[WEATHER_TOOL])
    assert second.stop_reason == "end_turn"
    assert "21 C, sunny" in text_of(second)  # the simulator echoes the tool result it received


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking_round_trip_keeps_signatures_to_anthropic(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog, *, stream: bool
) -> None:
    """Anthropic requires the signed thinking of a tool-use turn back unmodified; the simulator checks it."""
    kwargs: Any = {
        "model": "claude-sonnet",
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [WEATHER_TOOL],
    }
    messages: list[MessageParam] = [{"role": "user", "content": "weather in Oslo? [simulate tool-call=get_weather]"}]
    first: Message
    if stream:
        async with claude.messages.stream(messages=messages, **kwargs) as s:
            first = await s.get_final_message()
    else:
        first = await claude.messages.create(messages=messages, **kwargs)
    thinking = [block for block in first.content if block.type == "thinking"]
    assert thinking
    assert thinking[0].signature
    call = next(block for block in first.content if block.type == "tool_use")
    messages += [
        {"role": "assistant", "content": first.content},  # the SDK's own blocks, sent back as they came
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "21 C"}]},
    ]
    second = await claude.messages.create(messages=messages, **kwargs)
    assert second.stop_reason == "end_turn"
    replayed = upstream_log.last().body["messages"][1]["content"][0]
    assert replayed == {"type": "thinking", "thinking": thinking[0].thinking, "signature": thinking[0].signature}


@pytest.mark.parametrize("model", ["gpt-4o", "gemini-flash"])
async def test_thinking_maps_to_reasoning_effort_and_replayed_thinking_is_dropped(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog, model: str
) -> None:
    messages: list[MessageParam] = [
        {"role": "user", "content": "first"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "earlier thoughts", "signature": "c2ln"},
                {"type": "text", "text": "earlier answer"},
            ],
        },
        {"role": "user", "content": "second"},
    ]
    message = await claude.messages.create(
        model=model, max_tokens=8192, thinking={"type": "enabled", "budget_tokens": 5000}, messages=messages
    )
    assert "second" in text_of(message)
    sent = upstream_log.last().body
    assert "earlier thoughts" not in str(sent)
    assert "earlier answer" in str(sent)
    if model == "gpt-4o":
        assert sent["reasoning_effort"] == "medium"


async def test_count_tokens_is_anthropics_own_for_an_anthropic_target(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog
) -> None:
    counted = await claude.messages.count_tokens(
        model="claude-sonnet", system="Be brief.", messages=[{"role": "user", "content": "count these words"}]
    )
    entry = upstream_log.last()
    assert entry.path == "/v1/messages/count_tokens"
    assert entry.body["model"] == "claude-sonnet-4-5"
    assert counted.input_tokens > 0


async def test_count_tokens_is_geminis_own_for_a_gemini_target(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog
) -> None:
    counted = await claude.messages.count_tokens(
        model="gemini-flash", system="Be brief.", messages=[{"role": "user", "content": "count these words"}]
    )
    entry = upstream_log.last()
    assert entry.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    request = entry.body["generateContentRequest"]
    assert request["model"] == "models/gemini-2.5-flash"
    assert "Be brief." in str(request["systemInstruction"])
    assert "count these words" in str(request["contents"])
    assert counted.input_tokens > 0


@pytest.mark.parametrize("model", ["gpt-4o", "azure-gpt-4o"])
async def test_count_tokens_is_an_estimate_for_the_openai_family(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog, model: str
) -> None:
    short = await claude.messages.count_tokens(model=model, messages=[{"role": "user", "content": "hi"}])
    long = await claude.messages.count_tokens(model=model, messages=[{"role": "user", "content": "word " * 400}])
    assert 0 < short.input_tokens < long.input_tokens
    assert 400 <= long.input_tokens <= 1000  # 2,000 characters at about four a token, plus framing
    assert len(upstream_log) == 0  # Chat Completions has no counting endpoint


async def test_count_tokens_for_an_unknown_model_is_not_found(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        await claude.messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.type == "not_found_error"
    assert caught.value.error_code == "model_not_found"


@pytest.mark.parametrize("model", PROVIDERS)
async def test_a_claude_code_shaped_conversation_reaches_every_provider(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog, model: str
) -> None:
    """Cached system blocks and tools, a user id, a failed tool call whose result holds an image, streamed."""
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    cached: Any = {"type": "ephemeral"}
    messages: list[MessageParam] = [
        {"role": "user", "content": "take a screenshot"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "screenshot", "input": {}}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "is_error": True,
                    "content": [
                        {"type": "text", "text": "partial capture"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                    ],
                },
                {"type": "text", "text": "what do you see", "cache_control": cached},
            ],
        },
    ]
    async with claude.messages.stream(
        model=model,
        max_tokens=256,
        system=[{"type": "text", "text": "You are a coding agent.", "cache_control": cached}],
        tools=[{**WEATHER_TOOL, "name": "screenshot", "cache_control": cached}],
        metadata={"user_id": "user_abc"},
        messages=messages,
    ) as stream:
        final = await stream.get_final_message()
    assert "what do you see" in text_of(final)
    sent = upstream_log.last().body
    if model == "claude-sonnet":
        assert sent["messages"] == messages  # passed through as the SDK sent it
        return
    assert "cache_control" not in str(sent)
    if model in {"gpt-4o", "azure-gpt-4o"}:
        assert sent["user"] == "user_abc"
        assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool", "user"]
        assert sent["messages"][3]["content"] == "Error: partial capture"
        assert sent["messages"][4]["content"][0]["image_url"]["url"] == f"data:image/png;base64,{png}"
