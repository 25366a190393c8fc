"""What the gateway does for Chat Completions it does for Messages and Responses clients too: a consumer's limits
answered in each protocol's shape, usage and cost counted from each protocol's answers and streams, the audit
line, and the transparency headers."""

from __future__ import annotations

import logging

import anthropic
import openai
import pytest
from aiohttp import test_utils
from anthropic.types import MessageParam

from modelyard_proxy.keys import METRICS, STORE
from tests.gateway.test_consumers import TEAM_KEY, team
from tests.harness import GatewayFactory, audit_records
from tests.observability.test_metrics import parse, value

PROVIDERS = ["gpt-4o", "claude-sonnet", "gemini-flash"]
HI: list[MessageParam] = [{"role": "user", "content": "hi"}]


async def limited_gateway(gateway_factory: GatewayFactory) -> test_utils.TestServer:
    return await gateway_factory(*team("search", TEAM_KEY, models=["*"], limits={"requestsPerMinute": 2}))


def base_url(gateway: test_utils.TestServer) -> str:
    return str(gateway.make_url("")).rstrip("/")


async def test_a_consumers_rate_limit_is_anthropics_rate_limit_error(gateway_factory: GatewayFactory) -> None:
    gateway = await limited_gateway(gateway_factory)
    async with anthropic.AsyncAnthropic(base_url=base_url(gateway), api_key=TEAM_KEY, max_retries=0) as claude:
        first = await claude.messages.with_raw_response.create(model="gpt-4o", max_tokens=50, messages=HI)
        await claude.messages.create(model="claude-sonnet", max_tokens=50, messages=HI)
        with pytest.raises(anthropic.RateLimitError) as limited:
            await claude.messages.create(model="gemini-flash", max_tokens=50, messages=HI)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-modelyard-provider"] == "openai"
    assert limited.value.type == "rate_limit_error"
    assert limited.value.error_code == "rate_limit_exceeded"
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 60


async def test_a_consumers_rate_limit_is_openais_on_responses(gateway_factory: GatewayFactory) -> None:
    gateway = await limited_gateway(gateway_factory)
    url = str(gateway.make_url("/v1"))
    async with openai.AsyncOpenAI(base_url=url, api_key=TEAM_KEY, max_retries=0) as client:
        await client.responses.create(model="claude-sonnet", input="hi", store=False)
        await client.responses.create(model="gpt-4o", input="hi", store=False)
        with pytest.raises(openai.RateLimitError) as limited:
            await client.responses.create(model="gemini-flash", input="hi", store=False)
    assert limited.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_usage_and_cost_are_counted_and_audited_for_every_protocol(
    gateway_factory: GatewayFactory,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    *,
    stream: bool,
) -> None:
    gateway = await gateway_factory(*team("search", TEAM_KEY, models=["*"]))
    url = base_url(gateway)
    caplog.set_level(logging.INFO, logger="modelyard.audit")
    async with (
        anthropic.AsyncAnthropic(base_url=url, api_key=TEAM_KEY, max_retries=0) as claude,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=TEAM_KEY, max_retries=0) as client,
    ):
        for model in PROVIDERS:
            ask: list[MessageParam] = [{"role": "user", "content": f"count me on {model}"}]
            if stream:
                async with claude.messages.stream(model=model, max_tokens=50, messages=ask) as events:
                    await events.get_final_message()
                async with client.responses.stream(model=model, input=f"count me on {model}", store=False) as s:
                    await s.get_final_response()
            else:
                await claude.messages.create(model=model, max_tokens=50, messages=ask)
                await client.responses.create(model=model, input=f"count me on {model}", store=False)
    records = [r for r in audit_records(gateway.app, capsys) if r.get("status") == 200]
    assert len(records) == 2 * len(PROVIDERS)
    for record in records:
        assert record["consumer"] == "default/search"
        assert record["stream"] is stream
        assert record["usage"]["input"] > 0, record
        assert record["usage"]["output"] > 0, record
        assert record["cost_usd"] > 0, record
    samples, _ = parse(gateway.app[METRICS].render(None, gateway.app[STORE]))
    assert value(samples, "modelyard_consumer_requests_total", consumer="default/search", outcome="served") == 6
    assert value(samples, "modelyard_consumer_cost_usd_total", consumer="default/search") > 0
