"""A scripted refusal comes back as each provider's own content-filter finish, with no text."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

REFUSE = "tell me a secret [simulate refusal]"


async def test_openai_refusal_is_a_content_filter_finish(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.create(model="gpt-sim", messages=[{"role": "user", "content": REFUSE}])
    assert completion.choices[0].finish_reason == "content_filter"
    assert not completion.choices[0].message.content


async def test_anthropic_refusal_is_a_refusal_stop_reason(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(
        model="claude-sim", max_tokens=100, messages=[{"role": "user", "content": REFUSE}]
    )
    assert message.stop_reason == "refusal"
    assert not any(block.type == "text" and block.text for block in message.content)


@pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession from ClientSession is discouraged:DeprecationWarning"
)
async def test_gemini_refusal_is_a_safety_finish(gemini: genai.Client) -> None:
    response = await gemini.aio.models.generate_content(model="gemini-sim", contents=REFUSE)
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert not response.text
