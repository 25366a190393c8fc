"""Security by default: no prompt, completion or key reaches the logs or an error message."""

from __future__ import annotations

import logging

import openai
import pytest

from tests.harness import DEMO_KEY

SECRET_PROMPT = "my-private-diagnosis-7731"
PROVIDER_KEYS = ("sk-sim-openai", "sim-azure-key", "sk-ant-sim", "sim-gemini-key")


@pytest.mark.parametrize("model", ["gpt-4o", "azure-gpt-4o", "claude-sonnet", "gemini-flash"])
async def test_logs_hold_no_prompt_completion_or_key(
    client: openai.AsyncOpenAI, caplog: pytest.LogCaptureFixture, model: str
) -> None:
    caplog.set_level(logging.DEBUG)
    reply = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": SECRET_PROMPT}])
    assert SECRET_PROMPT in (reply.choices[0].message.content or "")
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": f"{SECRET_PROMPT} [simulate cut-after-chunks=1 token-interval-ms=20]"}],
        stream=True,
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": f"{SECRET_PROMPT} [simulate status=401]"}]
        )
    assert caught.value.status_code == 502
    logged = caplog.text
    assert logged  # the gateway did log: the absence below is meaningful
    for secret in (SECRET_PROMPT, DEMO_KEY, *PROVIDER_KEYS):
        assert secret not in logged
        assert secret not in caught.value.message
