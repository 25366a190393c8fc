"""The official Anthropic SDK against the simulator's Messages API."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import anthropic
import pytest
from aiohttp import test_utils

from modelyard_simulator import Behaviour, RequestLog, ScenarioBook
from modelyard_simulator.anthropic_dialect import REDACTED_TRIGGER

USER: Any = [{"role": "user", "content": "Weather in Oslo?"}]
TOOLS: Any = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


async def stream_text(claude: anthropic.AsyncAnthropic, headers: dict[str, str], into: list[str]) -> None:
    """Stream the default prompt, collecting text until the stream ends or fails."""
    async with claude.messages.stream(model="claude-sim", max_tokens=100, messages=USER, extra_headers=headers) as s:
        async for text in s.text_stream:
            into.append(text)


TOOL_HEADER = {"x-simulator-tool-call": json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})}


async def test_create_echoes_with_usage_and_request_id(
    claude: anthropic.AsyncAnthropic, sim_log: RequestLog, api_key: str
) -> None:
    raw = await claude.messages.with_raw_response.create(model="claude-sim", max_tokens=100, messages=USER)
    message = await raw.parse()
    assert message.id.startswith("msg_01")
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "claude-sim"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: Weather in Oslo?"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.usage.input_tokens == 3
    assert message.usage.output_tokens == 4
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0
    assert raw.headers["request-id"].startswith("req_")
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "3999"
    received = sim_log.last()
    # anthropic 2.x sends the API key as a Bearer token, not x-api-key; the simulator accepts both.
    assert received.header("authorization") == f"Bearer {api_key}"
    assert received.header("anthropic-version")


async def test_stream_text_and_final_message(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(model="claude-sim", max_tokens=100, messages=USER) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == "echo: Weather in Oslo?"
    assert len(pieces) == 4
    assert final.content[0].type == "text"
    assert final.content[0].text == "echo: Weather in Oslo?"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4
    assert final.usage.input_tokens == 3


async def test_stream_event_order(claude: anthropic.AsyncAnthropic) -> None:
    stream = await claude.messages.create(model="claude-sim", max_tokens=100, messages=USER, stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("content_block_delta") == 4


async def test_tool_use_create_and_stream(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(
        model="claude-sim", max_tokens=100, messages=USER, tools=TOOLS, extra_headers=TOOL_HEADER
    )
    assert message.stop_reason == "tool_use"
    block = message.content[-1]
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_01")
    assert block.name == "get_weather"
    assert block.input == {"city": "Oslo"}

    async with claude.messages.stream(
        model="claude-sim", max_tokens=100, messages=USER, tools=TOOLS, extra_headers=TOOL_HEADER
    ) as stream:
        final = await stream.get_final_message()
    streamed = final.content[-1]
    assert streamed.type == "tool_use"
    assert streamed.input == {"city": "Oslo"}
    assert final.stop_reason == "tool_use"


async def test_tool_result_turn_gets_a_text_answer(claude: anthropic.AsyncAnthropic, sim_log: RequestLog) -> None:
    messages: Any = [
        *USER,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "4C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "windy"}]},
            ],
        },
    ]
    message = await claude.messages.create(
        model="claude-sim", max_tokens=100, messages=messages, tools=TOOLS, extra_headers=TOOL_HEADER
    )
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: 4C\nwindy"
    blocks = sim_log.last().body["messages"][-1]["content"]
    assert [b["type"] for b in blocks] == ["tool_result", "tool_result"]


async def test_thinking_blocks_stream_with_signature(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(
        model="claude-sim",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=USER,
    ) as stream:
        final = await stream.get_final_message()
    thinking, text = final.content
    assert thinking.type == "thinking"
    assert thinking.thinking == "The user said: Weather in Oslo?"
    assert thinking.signature
    assert text.type == "text"
    assert text.text == "echo: Weather in Oslo?"
    assert final.usage.output_tokens == 4 + 6  # text + thinking tokens


THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
#: Anthropic's documented test string: a prompt holding it gets redacted thinking.
REDACTED_PROMPT: Any = [{"role": "user", "content": f"Weather? {REDACTED_TRIGGER}"}]


@pytest.mark.parametrize("stream", [False, True])
async def test_redacted_thinking_on_the_documented_trigger(claude: anthropic.AsyncAnthropic, stream: bool) -> None:
    message: anthropic.types.Message
    if stream:
        async with claude.messages.stream(
            model="claude-sim", max_tokens=2048, thinking=THINKING, messages=REDACTED_PROMPT
        ) as streamed:
            message = await streamed.get_final_message()
    else:
        message = await claude.messages.create(
            model="claude-sim", max_tokens=2048, thinking=THINKING, messages=REDACTED_PROMPT
        )
    redacted = message.content[0]
    assert redacted.type == "redacted_thinking"
    assert redacted.data
    assert message.content[1].type == "text"


async def tool_turn(claude: anthropic.AsyncAnthropic, prompt: Any) -> Any:
    """The conversation after a thinking turn that called the weather tool, as the SDK returned it."""
    first = await claude.messages.create(
        model="claude-sim", max_tokens=2048, thinking=THINKING, messages=prompt, tools=TOOLS, extra_headers=TOOL_HEADER
    )
    assert first.stop_reason == "tool_use"
    tool_use = first.content[-1]
    assert tool_use.type == "tool_use"
    result = {"type": "tool_result", "tool_use_id": tool_use.id, "content": "4C"}
    return [*prompt, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}]


@pytest.mark.parametrize("prompt", [USER, REDACTED_PROMPT], ids=["signed", "redacted"])
async def test_thinking_replayed_unmodified_continues_the_tool_turn(
    claude: anthropic.AsyncAnthropic, prompt: Any
) -> None:
    messages = await tool_turn(claude, prompt)
    answer = await claude.messages.create(
        model="claude-sim", max_tokens=2048, thinking=THINKING, messages=messages, tools=TOOLS
    )
    assert answer.stop_reason == "end_turn"


async def test_tool_turn_without_its_thinking_is_refused_while_thinking(claude: anthropic.AsyncAnthropic) -> None:
    messages = await tool_turn(claude, USER)
    messages[1]["content"] = [b for b in messages[1]["content"] if b.type != "thinking"]
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(
            model="claude-sim", max_tokens=2048, thinking=THINKING, messages=messages, tools=TOOLS
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "final `assistant` message must start with a thinking block" in caught.value.message
    # The same history is fine without thinking.
    answer = await claude.messages.create(model="claude-sim", max_tokens=2048, messages=messages, tools=TOOLS)
    assert answer.stop_reason == "end_turn"


@pytest.mark.parametrize(("field", "tampered"), [("thinking", "I changed my mind."), ("signature", "Zm9yZ2Vk")])
async def test_modified_thinking_is_refused(claude: anthropic.AsyncAnthropic, field: str, tampered: str) -> None:
    messages = await tool_turn(claude, USER)
    thinking = messages[1]["content"][0].model_dump()
    messages[1]["content"] = [{**thinking, field: tampered}, *messages[1]["content"][1:]]
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(
            model="claude-sim", max_tokens=2048, thinking=THINKING, messages=messages, tools=TOOLS
        )
    error = caught.value.body["error"]  # type: ignore[index]
    assert error == {
        "type": "invalid_request_error",
        "message": "messages.1.content.0: Invalid `signature` in `thinking` block",
    }


async def test_forced_tool_choice_always_calls_the_tool(claude: anthropic.AsyncAnthropic) -> None:
    tools: Any = [*TOOLS, {"name": "answer", "input_schema": {"type": "object"}}]
    named = await claude.messages.create(
        model="claude-sim", max_tokens=100, messages=USER, tools=tools, tool_choice={"type": "tool", "name": "answer"}
    )
    assert [(b.type, getattr(b, "name", None)) for b in named.content] == [("tool_use", "answer")]
    assert named.content[0].input == {"echo": "Weather in Oslo?"}  # type: ignore[union-attr]
    any_tool = await claude.messages.create(
        model="claude-sim", max_tokens=100, messages=USER, tools=TOOLS, tool_choice={"type": "any"}
    )
    assert any_tool.stop_reason == "tool_use"
    assert any_tool.content[0].input == {"city": "Weather in Oslo?"}  # type: ignore[union-attr]


async def test_forced_tool_choice_cannot_think(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(
            model="claude-sim",
            max_tokens=2048,
            thinking=THINKING,
            messages=USER,
            tools=TOOLS,
            tool_choice={"type": "any"},
        )
    assert "Thinking may not be enabled when tool_choice forces tool use." in caught.value.message


async def test_stop_sequence_and_max_tokens(claude: anthropic.AsyncAnthropic) -> None:
    stopped = await claude.messages.create(model="claude-sim", max_tokens=100, messages=USER, stop_sequences=["Oslo"])
    assert stopped.stop_reason == "stop_sequence"
    assert stopped.stop_sequence == "Oslo"
    assert stopped.content[0].type == "text"
    assert stopped.content[0].text == "echo: Weather in "

    limited = await claude.messages.create(model="claude-sim", max_tokens=1, messages=USER)
    assert limited.stop_reason == "max_tokens"
    assert limited.usage.output_tokens == 1


async def test_output_config_json_schema(claude: anthropic.AsyncAnthropic) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    message = await claude.messages.create(
        model="claude-sim",
        max_tokens=100,
        messages=USER,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert message.content[0].type == "text"
    assert json.loads(message.content[0].text) == {"answer": "Weather in Oslo?"}


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (418, anthropic.APIStatusError, "invalid_request_error"),
    ],
)
async def test_error_statuses(
    claude: anthropic.AsyncAnthropic, status: int, exception: type[anthropic.APIStatusError], error_type: str
) -> None:
    with pytest.raises(exception) as caught:
        await claude.messages.create(
            model="claude-sim",
            max_tokens=100,
            messages=USER,
            extra_headers={"x-simulator-status": str(status), "x-simulator-retry-after": "1"},
        )
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == caught.value.request_id
    assert caught.value.response.headers["retry-after"] == "1"


async def test_mid_stream_overloaded_error(claude: anthropic.AsyncAnthropic) -> None:
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await stream_text(claude, {"x-simulator-mid-stream-error": "1"}, seen)
    assert seen == ["echo:"]
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "overloaded_error"


async def test_cut_stream_raises(claude: anthropic.AsyncAnthropic) -> None:
    # A body cut mid-stream reaches the caller as the SDK's connection error, after the text that did arrive.
    seen: list[str] = []
    with pytest.raises(anthropic.APIConnectionError):
        await stream_text(claude, {"x-simulator-cut-after-chunks": "1"}, seen)
    assert seen == ["echo:"]


async def test_count_tokens(claude: anthropic.AsyncAnthropic) -> None:
    counted = await claude.messages.count_tokens(model="claude-sim", messages=USER, system="Be brief.")
    assert counted.input_tokens == 5


async def test_wrong_key(claude: anthropic.AsyncAnthropic, book: ScenarioBook) -> None:
    book.models = {"claude-*": Behaviour(require_key="other")}
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await claude.messages.create(model="claude-sim", max_tokens=10, messages=USER)
    assert "invalid x-api-key" in caught.value.message


async def test_tool_call_from_directive(claude: anthropic.AsyncAnthropic) -> None:
    prompt: Any = [{"role": "user", "content": "[simulate tool-call=get_weather] go"}]
    message = await claude.messages.create(model="claude-sim", max_tokens=100, messages=prompt, tools=TOOLS)
    assert message.content[-1].type == "tool_use"
    assert message.content[-1].input == {}


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, {"model": "m", "max_tokens": 5, "messages": USER}, "anthropic-version: header is required"),
        ({"anthropic-version": "2023-06-01"}, {"model": "m", "messages": USER}, "max_tokens: Field required"),
        (
            {"anthropic-version": "2023-06-01"},
            {"model": "m", "max_tokens": 5, "messages": USER, "thinking": {"type": "enabled", "budget_tokens": 1024}},
            "`max_tokens` must be greater than `thinking.budget_tokens`.",
        ),
    ],
)
async def test_request_validation(
    sim: test_utils.TestServer, headers: dict[str, str], body: dict[str, Any], message: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(sim.make_url("/v1/messages"), json=body, headers=headers) as response,
    ):
        assert response.status == 400
        payload = await response.json()
    assert payload["type"] == "error"
    assert payload["error"] == {"type": "invalid_request_error", "message": message}
    assert payload["request_id"] == response.headers["request-id"]
