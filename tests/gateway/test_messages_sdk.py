"""Anthropic's SDK against the gateway's ``/v1/messages``, served by every provider family the simulator plays."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import pytest
from aiohttp import test_utils

from modelyard_simulator import RequestLog
from tests.harness import DEMO_KEY

#: Public model name -> the path the simulated upstream must have been called on.
PROVIDERS = {
    "gpt-4o": "/v1/chat/completions",
    "azure-gpt-4o": "/openai/deployments/gpt-4o-deployment/chat/completions",
    "claude-sonnet": "/v1/messages",
    "gemini-flash": "/v1beta/models/gemini-2.5-flash:generateContent",
}


@pytest.fixture
async def claude(gateway: test_utils.TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=str(gateway.make_url("")), api_key=DEMO_KEY, max_retries=0) as sdk:
        yield sdk


@pytest.mark.parametrize("model", PROVIDERS)
async def test_create(claude: anthropic.AsyncAnthropic, upstream_log: RequestLog, model: str) -> None:
    message = await claude.messages.create(
        model=model,
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert message.type == "message"
    text = "".join(block.text for block in message.content if block.type == "text")
    assert "hello there" in text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    assert upstream_log.last().path == PROVIDERS[model]
