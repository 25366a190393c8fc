"""Anthropic's signed thinking across a tool call, through ``/v1/responses``: the gateway carries it in the
reasoning item's ``encrypted_content`` and puts it back on the assistant turn, so thinking stays on.

The simulator enforces Anthropic's rules: with thinking on, the assistant turn that called tools must start
with its signed thinking, unmodified.
"""

from __future__ import annotations

import openai
import pytest
from openai.types.responses import FunctionToolParam, Response, ResponseInputParam

from modelyard_simulator import RequestLog
from modelyard_simulator.anthropic_dialect import REDACTED_TRIGGER

MODEL = "claude-sonnet"
ASK = "weather in Oslo? [simulate tool-call=get_weather]"
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}


async def ask(client: openai.AsyncOpenAI, history: ResponseInputParam, stream: bool) -> Response:
    if not stream:
        return await client.responses.create(
            model=MODEL, input=history, tools=[WEATHER], reasoning={"effort": "low"}, store=False
        )
    async with client.responses.stream(
        model=MODEL, input=history, tools=[WEATHER], reasoning={"effort": "low"}, store=False
    ) as events:
        return await events.get_final_response()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("prompt", [ASK, f"{ASK} {REDACTED_TRIGGER}"], ids=["signed", "redacted"])
async def test_a_tool_follow_up_keeps_thinking_on(
    client: openai.AsyncOpenAI, upstream_log: RequestLog, stream: bool, prompt: str
) -> None:
    history: ResponseInputParam = [{"role": "user", "content": prompt}]
    first = await ask(client, history, stream)
    reasoning = [item for item in first.output if item.type == "reasoning"]
    assert reasoning
    assert reasoning[0].encrypted_content
    call = next(item for item in first.output if item.type == "function_call")
    sent_first = upstream_log.last().body
    history += [item.model_dump(exclude_none=True) for item in first.output]  # type: ignore[misc]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 21}'})

    second = await ask(client, history, stream)
    assert second.status == "completed"
    sent = upstream_log.last().body
    assert sent is not sent_first
    assert sent["thinking"]["type"] == "enabled"
    assistant = sent["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0]["type"] in {"thinking", "redacted_thinking"}
    assert assistant["content"][-1]["type"] == "tool_use"


async def test_reasoning_items_without_the_carried_state_continue_without_thinking(
    client: openai.AsyncOpenAI, upstream_log: RequestLog
) -> None:
    history: ResponseInputParam = [{"role": "user", "content": ASK}]
    first = await ask(client, history, stream=False)
    call = next(item for item in first.output if item.type == "function_call")
    # A client that drops what it does not keep, or a history another provider wrote.
    history += [item.model_dump(exclude_none=True, exclude={"encrypted_content"}) for item in first.output]  # type: ignore[misc]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "21"})
    second = await ask(client, history, stream=False)
    assert second.status == "completed"
    sent = upstream_log.last().body
    assert "thinking" not in sent
    assert [block["type"] for block in sent["messages"][1]["content"]] == ["tool_use"]
