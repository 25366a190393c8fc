"""Bedrock's failures as OpenAI SDK clients see them: throttling, context length, fallback both ways, exceptions
inside the event stream, and calls AWS refuses to authenticate."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from aiohttp import test_utils

from modelyard_simulator.aws_keys import AWS_KEYRING, TEST_ACCESS_KEY_ID, IssuedKey
from tests.gateway.bedrock_setup import CLAUDE, NOVA, bedrock_gateway, script, sdk

__all__ = ["bedrock_gateway", "sdk"]  # fixtures

HELLO: Any = [{"role": "user", "content": "hello there"}]


async def test_throttling_is_a_rate_limit_error_once_no_target_is_left(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer
) -> None:
    script(simulator, CLAUDE, status=429, retry_after=3)
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.chat.completions.create(model="bedrock-claude", messages=HELLO)
    assert caught.value.code == "rate_limit_exceeded"
    assert "ThrottlingException" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "3"


async def test_a_prompt_too_long_is_a_context_length_error(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer
) -> None:
    script(simulator, NOVA, status=400, error_message="Input is too long for requested model.")
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="bedrock-nova", messages=HELLO)
    assert caught.value.code == "context_length_exceeded"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(
    ("route", "throttled", "served_by"),
    [("bedrock-first", CLAUDE, "backup"), ("openai-first", "primary", NOVA)],
    ids=["bedrock-to-openai", "openai-to-bedrock"],
)
async def test_throttling_falls_back_across_providers(
    sdk: openai.AsyncOpenAI,
    simulator: test_utils.TestServer,
    route: str,
    throttled: str,
    served_by: str,
    *,
    stream: bool,
) -> None:
    script(simulator, throttled, status=429)
    raw = await sdk.chat.completions.with_raw_response.create(model=route, messages=HELLO, stream=stream)
    assert raw.headers["x-modelyard-upstream-model"] == served_by
    assert raw.headers["x-modelyard-attempts"] == "2"
    answer = raw.parse()
    if isinstance(answer, openai.AsyncStream):
        text = "".join([choice.delta.content or "" async for chunk in answer for choice in chunk.choices])
    else:
        text = answer.choices[0].message.content or ""
    assert "hello there" in text


async def test_an_exception_frame_before_any_content_falls_back(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer
) -> None:
    script(simulator, CLAUDE, mid_stream_error=True, cut_after_chunks=0)
    raw = await sdk.chat.completions.with_raw_response.create(model="bedrock-first", messages=HELLO, stream=True)
    assert raw.headers["x-modelyard-upstream-model"] == "backup"
    chunks = raw.parse()
    assert isinstance(chunks, openai.AsyncStream)
    assert "hello there" in "".join([c.delta.content or "" async for chunk in chunks for c in chunk.choices])


async def test_an_exception_frame_after_content_ends_the_stream_in_band(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer
) -> None:
    script(simulator, CLAUDE, mid_stream_error=True, cut_after_chunks=2, token_interval_ms=20)
    stream = await sdk.chat.completions.create(model="bedrock-first", messages=HELLO, stream=True)
    pieces: list[str] = []

    async def read() -> None:
        async for chunk in stream:
            pieces.extend(choice.delta.content or "" for choice in chunk.choices)

    with pytest.raises(openai.APIError) as caught:
        await read()
    text = "".join(pieces)
    # What reached the client before the failure (the chunk read with the exception frame may be dropped with
    # it), and nothing of the backup's answer: after the commit point there is no fallback.
    assert text in {"echo:", "echo: hello"}
    assert "ModelStreamErrorException" in caught.value.message


async def test_a_corrupt_event_stream_falls_back(sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer) -> None:
    script(simulator, CLAUDE, malformed=True)
    raw = await sdk.chat.completions.with_raw_response.create(model="bedrock-first", messages=HELLO, stream=True)
    assert raw.headers["x-modelyard-upstream-model"] == "backup"


async def test_a_wrong_secret_key_fails_like_aws_fails_it_without_echoing_aws(sdk: openai.AsyncOpenAI) -> None:
    """AWS's text for a bad signature quotes the canonical request; the client learns what failed, not that."""
    with pytest.raises(openai.InternalServerError) as caught:
        await sdk.chat.completions.create(model="bedrock-wrong", messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_auth_failed"
    assert "sim-bedrock-wrong" in caught.value.message
    assert "InvalidSignatureException" in caught.value.message
    assert "Canonical" not in caught.value.message
    assert "x-amz-date" not in caught.value.message.lower()


async def test_an_unknown_access_key_is_an_auth_failure(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer
) -> None:
    simulator.app[AWS_KEYRING].revoke(TEST_ACCESS_KEY_ID)
    with pytest.raises(openai.InternalServerError) as caught:
        await sdk.chat.completions.create(model="bedrock-nova", messages=HELLO)
    assert caught.value.code == "upstream_auth_failed"
    assert "UnrecognizedClientException" in caught.value.message


async def test_an_expired_session_is_an_auth_failure(sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer) -> None:
    keyring = simulator.app[AWS_KEYRING]
    current = keyring.lookup(TEST_ACCESS_KEY_ID)
    assert current is not None
    keyring.add(TEST_ACCESS_KEY_ID, IssuedKey(current.secret_access_key, None, expires_at=time.time() - 1))
    with pytest.raises(openai.InternalServerError) as caught:
        await sdk.chat.completions.create(model="bedrock-nova", messages=HELLO)
    assert caught.value.code == "upstream_auth_failed"
    assert "ExpiredTokenException" in caught.value.message
