"""Anthropic through the OpenAI SDK: signed thinking across a tool call, and JSON mode.

The simulator enforces Anthropic's rules: signed thinking blocks must come back unmodified, and with
thinking on, the final assistant turn that called tools must start with its thinking.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionMessage, ChatCompletionMessageParam

from modelyard_simulator import RequestLog
from modelyard_simulator.anthropic_dialect import REDACTED_TRIGGER
from tests.gateway.test_providers import WEATHER_TOOL

MODEL = "claude-sonnet"
ASK = "weather in Oslo? [simulate tool-call=get_weather]"


def thinking_blocks(message: ChatCompletionMessage) -> list[dict[str, Any]]:
    """The signed blocks the gateway returned, where the SDK keeps fields it does not know."""
    extra = (message.model_extra or {}).get("extra_content") or {}
    blocks: list[dict[str, Any]] = extra["anthropic"]["thinking_blocks"]
    return blocks


async def call_tool(client: openai.AsyncOpenAI, ask: str, stream: bool) -> ChatCompletionMessage:
    """The assistant's tool-calling reply, thinking on, as the SDK hands it over (streamed or whole)."""
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": ask}]
    completion: ChatCompletion
    if not stream:
        completion = await client.chat.completions.create(
            model=MODEL, messages=messages, tools=[WEATHER_TOOL], reasoning_effort="low"
        )
    else:
        # The SDK's own stream accumulator builds the message, as a streaming client's history would.
        async with client.chat.completions.stream(
            model=MODEL, messages=messages, tools=[WEATHER_TOOL], reasoning_effort="low"
        ) as events:
            completion = await events.get_final_completion()
    assert completion.choices[0].finish_reason == "tool_calls"
    return completion.choices[0].message


def follow_up(ask: str, reply: dict[str, Any]) -> list[ChatCompletionMessageParam]:
    call_id = reply["tool_calls"][0]["id"]
    return [
        {"role": "user", "content": ask},
        reply,  # type: ignore[list-item]  # the SDK's own echo of its reply
        {"role": "tool", "tool_call_id": call_id, "content": '{"temp_c": 21}'},
    ]


async def answer(client: openai.AsyncOpenAI, messages: list[ChatCompletionMessageParam], stream: bool) -> str | None:
    """The finish reason of a thinking follow-up turn."""
    if not stream:
        completion = await client.chat.completions.create(
            model=MODEL, messages=messages, tools=[WEATHER_TOOL], reasoning_effort="low"
        )
        return completion.choices[0].finish_reason
    chunks = await client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], reasoning_effort="low", stream=True
    )
    finish = None
    async for chunk in chunks:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
    return finish


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("ask", "kind"), [(ASK, "thinking"), (f"{ASK} {REDACTED_TRIGGER}", "redacted_thinking")], ids=["signed", "redacted"]
)
async def test_tool_follow_up_with_reasoning_effort_replays_the_thinking(
    client: openai.AsyncOpenAI, upstream_log: RequestLog, stream: bool, ask: str, kind: str
) -> None:
    reply = await call_tool(client, ask, stream)
    blocks = thinking_blocks(reply)
    assert [block["type"] for block in blocks] == [kind]
    assert blocks[0].get("signature") or blocks[0].get("data")
    if kind == "thinking":
        assert blocks[0]["thinking"] == reply.model_extra["reasoning_content"]  # type: ignore[index]

    assert await answer(client, follow_up(ask, reply.model_dump(exclude_none=True)), stream) == "stop"
    sent = upstream_log.last().body
    assert sent["thinking"]["type"] == "enabled"
    replayed = {key: value for key, value in blocks[0].items() if key != "index"}
    assert sent["messages"][1]["content"][0] == replayed


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_history_without_a_signature_continues_without_thinking(
    client: openai.AsyncOpenAI, upstream_log: RequestLog, stream: bool
) -> None:
    reply = await call_tool(client, ASK, stream=False)
    # A client that keeps only the fields it knows, or a history another provider wrote.
    plain = reply.model_dump(exclude_none=True, exclude={"extra_content"})
    assert await answer(client, follow_up(ASK, plain), stream) == "stop"
    sent = upstream_log.last().body
    assert "thinking" not in sent
    assert [block["type"] for block in sent["messages"][1]["content"]] == ["tool_use"]


JSON_FORMATS: list[Any] = [
    {"type": "json_object"},
    {
        "type": "json_schema",
        "json_schema": {"name": "trip", "schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
    },
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("response_format", JSON_FORMATS, ids=["json_object", "json_schema"])
async def test_json_mode_answers_json_content_that_stops(
    client: openai.AsyncOpenAI, stream: bool, response_format: Any
) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "plan a trip to Oslo"}]
    if not stream:
        completion = await client.chat.completions.create(
            model=MODEL, messages=messages, response_format=response_format
        )
        content, finish = completion.choices[0].message.content, completion.choices[0].finish_reason
        assert completion.choices[0].message.tool_calls is None
    else:
        chunks = await client.chat.completions.create(
            model=MODEL, messages=messages, response_format=response_format, stream=True
        )
        content, finish = "", None
        async for chunk in chunks:
            for choice in chunk.choices:
                assert choice.delta.tool_calls is None
                content += choice.delta.content or ""
                finish = choice.finish_reason or finish
    assert isinstance(json.loads(content or ""), dict)
    assert finish == "stop"


async def test_json_object_with_reasoning_effort_is_refused(
    client: openai.AsyncOpenAI, upstream_log: RequestLog
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
            reasoning_effort="low",
        )
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == "reasoning_effort"
    assert len(upstream_log) == 0
