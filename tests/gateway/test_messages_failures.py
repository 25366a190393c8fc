"""Failures reach Anthropic's SDK as its own exception classes, on ``/v1/messages`` whatever the provider: bad
input, auth, an upstream's rate limit or overload, refusals, and streams cut before or after the commit point."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from aiohttp import test_utils
from anthropic.lib.streaming import AsyncMessageStreamManager
from anthropic.types import Message

from modelyard_simulator import RequestLog
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import SCENARIOS
from tests.harness import DEMO_KEY, GatewayFactory, route

MODELS = ["gpt-4o", "azure-gpt-4o", "claude-sonnet", "gemini-flash"]


MANIFESTS = [
    route("claude-then-gpt", ("sim-anthropic", "cut-claude"), ("sim-openai", "steady-gpt")),
    route("gpt-then-claude", ("sim-openai", "cut-gpt"), ("sim-anthropic", "steady-claude")),
]


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory) -> test_utils.TestServer:
    return await gateway_factory(*MANIFESTS)


@pytest.fixture
async def claude(gateway: test_utils.TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=str(gateway.make_url("")), api_key=DEMO_KEY, max_retries=0) as sdk:
        yield sdk


async def read_text(manager: AsyncMessageStreamManager, texts: list[str]) -> None:
    async with manager as stream:
        async for text in stream.text_stream:
            texts.append(text)


async def ask(claude: anthropic.AsyncAnthropic, model: str, text: str, **kwargs: Any) -> Message:
    message: Message = await claude.messages.create(
        model=model, max_tokens=64, messages=[{"role": "user", "content": text}], **kwargs
    )
    return message


@pytest.mark.parametrize("model", MODELS)
async def test_an_upstream_rate_limit_is_a_rate_limit_error(claude: anthropic.AsyncAnthropic, model: str) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        await ask(claude, model, "hi [simulate status=429 retry-after=7]")
    assert caught.value.type == "rate_limit_error"
    assert caught.value.error_code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize(("model", "status"), [("claude-sonnet", 529), ("gpt-4o", 503), ("gemini-flash", 503)])
async def test_an_overloaded_upstream_is_anthropics_overloaded_error(
    claude: anthropic.AsyncAnthropic, model: str, status: int
) -> None:
    with pytest.raises(anthropic.OverloadedError) as caught:
        await ask(claude, model, f"hi [simulate status={status}]")
    assert caught.value.status_code == 529
    assert caught.value.type == "overloaded_error"
    assert caught.value.error_code == "upstream_unavailable"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"messages": [{"role": "user", "content": "hi"}]}, id="no-max-tokens"),
        pytest.param(
            {"messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "enabled", "budget_tokens": 2048}},
            id="thinking-without-max-tokens",
        ),
        pytest.param({"max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}, id="zero-max-tokens"),
        pytest.param({"max_tokens": 64, "messages": []}, id="no-messages"),
        pytest.param({"max_tokens": 64, "messages": [{"role": "system", "content": "hi"}]}, id="system-role"),
        pytest.param({"max_tokens": 64, "messages": [{"role": "user", "content": 5}]}, id="content-type"),
        pytest.param(
            {
                "max_tokens": 2048,
                "messages": [{"role": "user", "content": "hi"}],
                "thinking": {"type": "enabled", "budget_tokens": 512},
            },
            id="small-thinking-budget",
        ),
        pytest.param(
            {"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "maybe"}},
            id="tool-choice",
        ),
        pytest.param({"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, id="stream"),
    ],
)
@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet"])
async def test_a_malformed_request_is_a_bad_request_error(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog, model: str, body: dict[str, Any]
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.post("/v1/messages", cast_to=Message, body={"model": model, **body})
    assert caught.value.type == "invalid_request_error"
    assert len(upstream_log) == 0


@pytest.mark.parametrize("model", ["gpt-4o", "azure-gpt-4o", "gemini-flash"])
async def test_what_chat_cannot_express_is_refused_naming_it(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog, model: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await ask(claude, model, "hi", extra_body={"top_k": 5})
    assert caught.value.error_code == "unsupported_parameter"
    assert "top_k" in str(caught.value.api_message)
    assert len(upstream_log) == 0


async def test_anthropic_receives_what_it_alone_understands(
    claude: anthropic.AsyncAnthropic, upstream_log: RequestLog
) -> None:
    await ask(
        claude, "claude-sonnet", "hi", extra_body={"top_k": 5}, extra_headers={"anthropic-beta": "some-beta-2025-01-01"}
    )
    entry = upstream_log.last()
    assert entry.body["top_k"] == 5
    assert entry.headers["anthropic-beta"] == "some-beta-2025-01-01"
    assert entry.headers["x-api-key"] == "sk-ant-sim"  # the gateway's credential, not the client's key


async def test_a_missing_or_unknown_key_is_an_authentication_error(gateway: test_utils.TestServer) -> None:
    async with anthropic.AsyncAnthropic(base_url=str(gateway.make_url("")), api_key="nope", max_retries=0) as sdk:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await ask(sdk, "gpt-4o", "hi")
        with pytest.raises(anthropic.AuthenticationError) as counting:
            await sdk.messages.count_tokens(model="claude-sonnet", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.error_code == counting.value.error_code == "invalid_api_key"
    assert caught.value.type == "authentication_error"


async def test_an_unknown_model_is_not_found(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        await ask(claude, "no-such-model", "hi")
    assert caught.value.error_code == "model_not_found"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_refusal_is_stop_reason_refusal(claude: anthropic.AsyncAnthropic, model: str, *, stream: bool) -> None:
    message: Message
    if stream:
        messages: Any = [{"role": "user", "content": "hi [simulate refusal]"}]
        async with claude.messages.stream(model=model, max_tokens=64, messages=messages) as s:
            message = await s.get_final_message()
    else:
        message = await ask(claude, model, "hi [simulate refusal]")
    assert message.stop_reason == "refusal"


@pytest.mark.parametrize(
    ("model", "served_by"), [("claude-then-gpt", "steady-gpt"), ("gpt-then-claude", "steady-claude")]
)
async def test_a_stream_cut_before_the_commit_point_falls_over(
    claude: anthropic.AsyncAnthropic, simulator: test_utils.TestServer, model: str, served_by: str
) -> None:
    for cut in ("cut-claude", "cut-gpt"):
        simulator.app[SCENARIOS].models[cut] = Behaviour().overlay({"cut_after_chunks": 0})
    messages: Any = [{"role": "user", "content": "fall over please"}]
    async with claude.messages.stream(model=model, max_tokens=64, messages=messages) as s:
        texts = [text async for text in s.text_stream]
        final = await s.get_final_message()
    assert "fall over please" in "".join(texts)
    assert final.stop_reason == "end_turn"
    headers = s.response.headers
    assert (headers["x-modelyard-upstream-model"], headers["x-modelyard-attempts"]) == (served_by, "2")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("how", ["cut-after-chunks=3", "mid-stream-error cut-after-chunks=3"])
async def test_a_stream_that_fails_after_the_commit_point_ends_with_an_error_event(
    claude: anthropic.AsyncAnthropic, model: str, how: str
) -> None:
    # Paced, so that the first words reach the client in reads of their own, before the failure.
    text = f"one two three four five six seven [simulate {how} token-interval-ms=20]"
    messages: Any = [{"role": "user", "content": text}]
    texts: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await read_text(claude.messages.stream(model=model, max_tokens=64, messages=messages), texts)
    assert texts  # content reached the client before the failure
    assert caught.value.type in {"api_error", "overloaded_error"}
    assert caught.value.error_code is not None
    assert caught.value.error_code.startswith("upstream_")
