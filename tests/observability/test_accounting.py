"""Tokens and cost: every provider's usage shape normalised and priced, prices from the credential or the
built-in defaults, the cost header and audit line, streamed usage, and failed attempts costing nothing."""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest
from aiohttp import test_utils

from modelyard_proxy.observability.accounting import Usage, cost_usd, usage_from
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.response import openai_usage
from modelyard_proxy.providers.openai_chat_to_gemini.response import usage as gemini_usage
from modelyard_routing import Credential, Provider, compile_inventory
from modelyard_routing.prices import DEFAULT_PRICES, default_price, price_for
from modelyard_routing.table import ModelPrice
from modelyard_simulator import RequestLog
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import SCENARIOS
from tests.harness import DEMO_KEY, GatewayFactory, audit_records, example_inventory

PRICE = ModelPrice(input=2.0, output=8.0, cached_input=0.5)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(  # OpenAI, Azure, and the OpenAI-compatible vendors
            {
                "prompt_tokens": 1000,
                "completion_tokens": 500,
                "total_tokens": 1500,
                "prompt_tokens_details": {"cached_tokens": 200},
                "completion_tokens_details": {"reasoning_tokens": 100},
            },
            Usage(input=1000, output=500, cached=200, reasoning=100),
            id="openai",
        ),
        pytest.param(  # Anthropic: input_tokens exclude cache reads and writes
            openai_usage(
                {
                    "input_tokens": 100,
                    "cache_read_input_tokens": 800,
                    "cache_creation_input_tokens": 100,
                    "output_tokens": 500,
                }
            ),
            Usage(input=1000, output=500, cached=800),
            id="anthropic",
        ),
        pytest.param(  # Gemini: thoughts are billed as output
            gemini_usage(
                {
                    "promptTokenCount": 1000,
                    "candidatesTokenCount": 300,
                    "thoughtsTokenCount": 200,
                    "cachedContentTokenCount": 400,
                }
            ),
            Usage(input=1000, output=500, cached=400, reasoning=200),
            id="gemini",
        ),
        pytest.param(
            {
                "prompt_tokens": 1000,
                "completion_tokens": 500,
                "prompt_cache_hit_tokens": 600,
                "prompt_cache_miss_tokens": 400,
            },
            Usage(input=1000, output=500, cached=600),
            id="deepseek",
        ),
        pytest.param({"prompt_tokens": 12, "total_tokens": 12}, Usage(input=12), id="embeddings"),
        pytest.param({"prompt_tokens": 5, "completion_tokens": None, "total_tokens": 5}, Usage(input=5), id="nulls"),
    ],
)
def test_each_usage_shape_is_normalised_and_priced(usage: dict[str, Any], expected: Usage) -> None:
    normal = usage_from(usage)
    assert normal == expected
    uncached = expected.input - expected.cached
    assert cost_usd(expected, PRICE) == pytest.approx(
        (uncached * 2.0 + expected.cached * 0.5 + expected.output * 8.0) / 1_000_000
    )


def test_cached_tokens_cost_the_input_price_when_no_cached_price_is_set() -> None:
    usage = Usage(input=1_000_000, output=1_000_000, cached=500_000)
    assert cost_usd(usage, ModelPrice(input=3.0, output=15.0)) == pytest.approx(18.0)
    assert cost_usd(usage, ModelPrice(input=3.0, output=15.0, cached_input=0.3)) == pytest.approx(1.5 + 0.15 + 15)
    assert cost_usd(Usage(), ModelPrice(input=3.0, output=15.0)) == 0


def test_no_usage_is_none() -> None:
    assert usage_from(None) is None
    assert usage_from("12") is None


def test_the_credentials_price_overrides_the_default_and_dated_names_find_theirs() -> None:
    plain = Credential(id="default/openai", provider=Provider.OPENAI, base_url="https://api.openai.com/v1")
    assert price_for(plain, "gpt-4o") == DEFAULT_PRICES["gpt-4o"]
    assert price_for(plain, "gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert price_for(plain, "gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]  # longest prefix wins
    assert price_for(plain, "my-finetune") is None
    assert default_price("gpt-4") is None  # a prefix of a listed name is not that name
    negotiated = plain.model_copy(update={"prices": {"gpt-4o": ModelPrice(input=1.0, output=4.0)}})
    assert price_for(negotiated, "gpt-4o") == ModelPrice(input=1.0, output=4.0)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5"),
        ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5"),
        ("eu.amazon.nova-lite-v1:0", "amazon.nova-lite"),
        ("amazon.titan-embed-text-v2:0", "amazon.titan-embed-text-v2"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("claude-opus-4-1@20250805", "claude-opus-4-1"),
    ],
)
def test_bedrock_and_vertex_model_ids_find_their_list_price(model: str, family: str) -> None:
    assert default_price(model) == DEFAULT_PRICES[family]


def test_a_geography_is_stripped_only_in_front_of_a_vendor_prefix() -> None:
    assert default_price("us.my-model") is None
    assert default_price("amazon.nova-pro") == DEFAULT_PRICES["amazon.nova-pro"]
    assert default_price("amazon.nova-proto-v1:0") is None  # a longer word is another family


PRICED_CREDENTIAL = {
    "apiVersion": "modelyard.io/v1alpha1",
    "kind": "ProviderCredential",
    "metadata": {"name": "sim-priced", "namespace": "default"},
    "spec": {
        "provider": "openai",
        "baseURL": "http://127.0.0.1:9100/v1",
        "secretRef": {"name": "simulator-keys", "key": "openai"},
        "prices": {
            "house-model": {"inputPerMTokens": 1000, "outputPerMTokens": 4000},
            "broken-model": {"inputPerMTokens": 1000, "outputPerMTokens": 4000},
        },
    },
}
PRICED_ROUTE = {
    "apiVersion": "modelyard.io/v1alpha1",
    "kind": "ModelRoute",
    "metadata": {"name": "house", "namespace": "default"},
    "spec": {
        "model": "house",
        "targets": [
            {"credentialRef": {"name": "sim-priced"}, "model": "broken-model"},
            {"credentialRef": {"name": "sim-priced"}, "model": "house-model", "priority": 1},
        ],
    },
}


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory, simulator: test_utils.TestServer) -> test_utils.TestServer:
    simulator.app[SCENARIOS].models["broken-model"] = Behaviour().overlay({"status": "503"})
    url = str(simulator.make_url("")).rstrip("/")
    credential = {**PRICED_CREDENTIAL, "spec": {**PRICED_CREDENTIAL["spec"], "baseURL": f"{url}/v1"}}  # type: ignore[dict-item]
    return await gateway_factory(credential, PRICED_ROUTE)


async def test_cost_header_and_audit_use_the_credentials_prices_and_failed_attempts_cost_nothing(
    gateway: test_utils.TestServer,
    client: openai.AsyncOpenAI,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with caplog.at_level(logging.INFO, logger="modelyard.audit"):
        raw = await client.chat.completions.with_raw_response.create(
            model="house", messages=[{"role": "user", "content": "hello"}]
        )
    reply = raw.parse()
    assert reply.usage is not None
    (record,) = audit_records(gateway.app, capsys)
    assert record["attempts"] == 2  # the broken first target answered 503: no tokens, no cost
    expected = (reply.usage.prompt_tokens * 1000 + reply.usage.completion_tokens * 4000) / 1_000_000
    assert record["cost_usd"] == pytest.approx(expected)
    assert float(raw.headers["x-modelyard-cost-usd"]) == pytest.approx(expected, abs=1e-8)
    assert record["usage"] == {
        "input": reply.usage.prompt_tokens,
        "output": reply.usage.completion_tokens,
        "cached": 0,
        "reasoning": 0,
    }


async def test_a_failed_request_costs_nothing_and_has_no_cost_header(
    gateway: test_utils.TestServer,
    client: openai.AsyncOpenAI,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with caplog.at_level(logging.INFO, logger="modelyard.audit"), pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "[simulate status=500]"}]
        )
    assert "x-modelyard-cost-usd" not in caught.value.response.headers
    (record,) = audit_records(gateway.app, capsys)
    assert (record["cost_usd"], record["usage"]) == (None, None)


@pytest.mark.parametrize("model", ["gpt-4o", "azure-gpt-4o", "claude-sonnet", "gemini-flash"])
async def test_streams_are_accounted_even_when_the_client_did_not_ask_for_usage(
    gateway: test_utils.TestServer,
    client: openai.AsyncOpenAI,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    upstream_log: RequestLog,
    model: str,
) -> None:
    with caplog.at_level(logging.INFO, logger="modelyard.audit"):
        stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "count to three"}], stream=True
        )
        chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)  # no usage chunk reached a client that did not ask
    (record,) = audit_records(gateway.app, capsys)
    assert record["usage"]["input"] > 0
    assert record["usage"]["output"] > 0
    assert record["cost_usd"] > 0
    assert record["ttft_ms"] > 0
    if model in {"gpt-4o", "azure-gpt-4o"}:
        (sent,) = list(upstream_log)
        assert sent.body["stream_options"] == {"include_usage": True}


async def test_a_client_that_asks_for_stream_usage_still_gets_it(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None


def test_a_guard_rail_uses_the_credentials_price_when_the_target_sets_none() -> None:
    capped = {
        **PRICED_ROUTE,
        "metadata": {"name": "capped", "namespace": "default"},
        "spec": {**PRICED_ROUTE["spec"], "model": "capped", "require": {"maxPricePerMTokens": 10}},  # type: ignore[dict-item]
    }
    inventory = example_inventory("http://sim")
    inventory.add_document(PRICED_CREDENTIAL, "test")
    inventory.add_document(capped, "test")
    inventory.add_document(PRICED_ROUTE, "test")
    result = compile_inventory(inventory, 1)
    (conditions,) = [c for ref, c in result.conditions.items() if ref.name == "capped"]
    assert "pricePerMTokens 4000 is above maxPricePerMTokens 10" in " ".join(c.message for c in conditions)
    (credential,) = [c for c in result.table.credentials if c.id == "default/sim-priced"]
    assert credential.prices["house-model"] == ModelPrice(input=1000, output=4000)
    assert "prices" not in next(c for c in result.table.credentials if c.id != "default/sim-priced").model_dump()
    assert DEMO_KEY  # the examples' key is what the gateway accepts
