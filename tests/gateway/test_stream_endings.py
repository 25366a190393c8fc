"""How a stream's end reaches the client: a clean end after the finish reason is complete, even without
``[DONE]`` (some OpenAI-compatible servers never send it); a clean end before any finish reason is not."""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest
from aiohttp import test_utils
from openai.types.chat import ChatCompletionChunk

from modelyard_proxy.keys import METRICS
from tests.harness import audit_records

PROMPT = "one two three four five six"


@pytest.mark.parametrize(
    "dropped",
    [pytest.param(1, id="no-done"), pytest.param(2, id="no-usage-no-done")],
)
async def test_a_clean_end_after_the_finish_reason_is_a_complete_answer_ended_with_done(
    gateway: test_utils.TestServer,
    client: openai.AsyncOpenAI,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    dropped: int,
) -> None:
    messages: Any = [{"role": "user", "content": f"{PROMPT} [simulate drop-last-events={dropped}]"}]
    with caplog.at_level(logging.INFO, logger="modelyard.audit"):
        async with client.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=messages, stream=True
        ) as response:
            lines = [line async for line in response.iter_lines() if line]
        stream = await client.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
        chunks = [chunk async for chunk in stream]  # an in-band error event would raise openai.APIError here
    assert lines[-1] == "data: [DONE]"
    assert not any('"error"' in line for line in lines)
    assert "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices) == f"echo: {PROMPT}"
    assert [choice.finish_reason for chunk in chunks for choice in chunk.choices if choice.finish_reason] == ["stop"]
    records = audit_records(gateway.app, capsys)
    assert [(record["status"], record["code"]) for record in records] == [(200, None), (200, None)]
    assert not gateway.app[METRICS].errors.values


async def test_a_clean_end_before_any_finish_reason_is_still_an_in_band_error(client: openai.AsyncOpenAI) -> None:
    # Dropping the finish chunk, the usage chunk and [DONE] leaves an answer that stops mid-way, cleanly.
    messages: Any = [{"role": "user", "content": f"{PROMPT} [simulate drop-last-events=3]"}]
    stream = await client.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
    parts: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        await read_into(stream, parts)
    assert parts  # content reached the client first
    assert caught.value.code == "upstream_truncated"


async def read_into(stream: openai.AsyncStream[ChatCompletionChunk], parts: list[str]) -> None:
    async for chunk in stream:
        parts.extend(choice.delta.content or "" for choice in chunk.choices)
