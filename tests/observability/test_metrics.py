"""Prometheus metrics on the admin port: scraped over HTTP and parsed, series by series."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from aiohttp import test_utils

from modelyard_proxy.keys import STORE
from modelyard_proxy.observability.metrics import Counter, Histogram
from modelyard_proxy.serving import server
from modelyard_routing.push import ADMIN_TABLE_PATH, AdminToken
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import SCENARIOS
from tests.harness import DEMO_KEY, GatewayFactory, start_server

TOKEN = "metrics-test-token"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

ROUTE = {
    "apiVersion": "modelyard.io/v1alpha1",
    "kind": "ModelRoute",
    "metadata": {"name": "fallback", "namespace": "default"},
    "spec": {
        "model": "fallback",
        "targets": [
            {"credentialRef": {"name": "sim-openai"}, "model": "broken-model"},
            {"credentialRef": {"name": "sim-openai"}, "model": "gpt-4o-mini", "priority": 1},
        ],
        "retry": {"attempts": 2, "backoff": {"initial": "1ms", "max": "1ms"}},
    },
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """Samples by (name, labels), and each family's TYPE; fails on any line that is not exposition format."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP ") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        key = (name, frozenset(LABEL.findall(labels or "")))
        assert key not in samples, f"duplicate series {line!r}"
        samples[key] = float(value)
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float:
    matches = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert matches, f"no {name} with {labels}"
    return sum(matches)


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory, simulator: test_utils.TestServer) -> test_utils.TestServer:
    simulator.app[SCENARIOS].models["broken-model"] = Behaviour().overlay({"status": "503"})
    return await gateway_factory(ROUTE)


@pytest.fixture
async def admin(gateway: test_utils.TestServer) -> AsyncIterator[test_utils.TestServer]:
    admin_server = await start_server(server.build_admin_app(gateway.app, AdminToken(value=TOKEN)))
    yield admin_server
    await admin_server.close()


async def scrape(admin: test_utils.TestServer, token: str = TOKEN) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(admin.make_url("/metrics"), headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def test_metrics_need_the_admin_token(admin: test_utils.TestServer) -> None:
    status, _, _ = await scrape(admin, token="wrong")
    assert status == 401


async def test_requests_latency_tokens_cost_and_attempts_are_exported(
    client: openai.AsyncOpenAI, admin: test_utils.TestServer
) -> None:
    await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello there"}])
    stream = await client.chat.completions.create(
        model="claude-sonnet",
        messages=[{"role": "user", "content": "hello [simulate token-interval-ms=5]"}],
        stream=True,
    )
    async for _ in stream:
        pass
    await client.chat.completions.create(model="fallback", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.APIStatusError):
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "[simulate status=429]"}]
        )

    status, content_type, text = await scrape(admin)
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    samples, types = parse(text)

    gpt = {"route": "default/gpt-4o", "provider": "openai", "model": "gpt-4o-2024-08-06"}
    assert value(samples, "modelyard_requests_total", **gpt, status="200") == 1
    assert value(samples, "modelyard_requests_total", route="default/gpt-4o", status="429") == 1
    assert (
        value(samples, "modelyard_request_errors_total", route="default/gpt-4o", error_type="rate_limit_exceeded") == 1
    )
    assert types["gen_ai_server_request_duration_seconds"] == "histogram"
    assert value(samples, "gen_ai_server_request_duration_seconds_count", route="default/gpt-4o") == 2
    assert value(samples, "gen_ai_server_request_duration_seconds_bucket", **gpt, le="+Inf") == 1

    claude = {"route": "default/claude-sonnet", "provider": "anthropic", "model": "claude-sonnet-4-5"}
    assert value(samples, "gen_ai_server_time_to_first_token_seconds_count", **claude) == 1
    assert value(samples, "gen_ai_server_time_per_output_token_seconds_count", **claude) == 1
    assert value(samples, "gen_ai_server_time_per_output_token_seconds_sum", **claude) > 0

    input_tokens = value(samples, "modelyard_tokens_total", **gpt, type="input")
    output_tokens = value(samples, "modelyard_tokens_total", **gpt, type="output")
    assert input_tokens > 0
    assert output_tokens > 0
    assert value(samples, "gen_ai_client_token_usage_sum", **gpt, gen_ai_token_type="input") == input_tokens
    # Built-in default price of gpt-4o: $2.50 in, $10 out per million tokens.
    cost = value(samples, "modelyard_cost_usd_total", **gpt)
    assert cost == pytest.approx((input_tokens * 2.5 + output_tokens * 10) / 1e6)
    assert value(samples, "modelyard_tokens_total", **claude, type="output") > 0  # streamed usage counted too

    fallback = {"route": "default/fallback", "provider": "openai"}
    assert (
        value(
            samples,
            "modelyard_upstream_attempts_total",
            **fallback,
            model="broken-model",
            outcome="upstream_unavailable",
        )
        == 2
    )
    assert value(samples, "modelyard_retries_total", **fallback, model="broken-model") == 1
    assert value(samples, "modelyard_upstream_attempts_total", **fallback, model="gpt-4o-mini", outcome="ok") == 1
    assert value(samples, "modelyard_fallbacks_total", route="default/fallback", reason="upstream_unavailable") == 1
    assert value(samples, "modelyard_requests_total", **fallback, model="gpt-4o-mini", status="200") == 1

    assert (
        value(samples, "modelyard_circuit_breaker_state", target="default/sim-openai|broken-model", state="closed") == 1
    )
    assert (
        value(samples, "modelyard_circuit_breaker_state", target="default/sim-openai|broken-model", state="open") == 0
    )
    assert value(samples, "modelyard_routing_table_generation") == 1
    (info,) = [labels for (name, labels) in samples if name == "modelyard_routing_table_info"]
    assert dict(info)["sha256"] == gateway_sha(admin)


def gateway_sha(admin: test_utils.TestServer) -> str:
    current = admin.app[STORE].current
    assert current is not None
    return current.table.sha256


async def test_standalone_admin_serves_metrics_but_refuses_pushes(gateway: test_utils.TestServer) -> None:
    standalone = await start_server(server.build_admin_app(gateway.app, AdminToken(value=TOKEN), accept_pushes=False))
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as session:
            async with session.put(standalone.make_url(ADMIN_TABLE_PATH), data=b"{}", headers=headers) as response:
                assert response.status == 405
            async with session.get(standalone.make_url(ADMIN_TABLE_PATH), headers=headers) as response:
                assert (await response.json())["generation"] == 1
        status, _, _ = await scrape(standalone)
        assert status == 200
    finally:
        await standalone.close()


def test_histogram_buckets_are_cumulative_and_labels_escaped() -> None:
    histogram = Histogram("h_seconds", "help", ("route",), (0.1, 1.0))
    for observed in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(('a"b\\c',), observed)
    lines = list(histogram.samples())
    assert lines == [
        'h_seconds_bucket{route="a\\"b\\\\c",le="0.1"} 2',
        'h_seconds_bucket{route="a\\"b\\\\c",le="1"} 3',
        'h_seconds_bucket{route="a\\"b\\\\c",le="+Inf"} 4',
        'h_seconds_sum{route="a\\"b\\\\c"} 3.65',
        'h_seconds_count{route="a\\"b\\\\c"} 4',
    ]
    counter = Counter("c_total", "help", ())
    counter.inc(())
    counter.inc((), 0.5)
    assert list(counter.samples()) == ["c_total 1.5"]


async def test_a_gateway_without_requests_still_renders(admin: test_utils.TestServer) -> None:
    status, _, text = await scrape(admin)
    assert status == 200
    samples, types = parse(text)
    assert types["modelyard_requests_total"] == "counter"
    assert value(samples, "modelyard_routing_table_generation") == 1
    assert DEMO_KEY not in text


async def test_requests_refused_before_routing_are_counted_once_with_empty_route_labels(
    gateway: test_utils.TestServer, client: openai.AsyncOpenAI, admin: test_utils.TestServer
) -> None:
    async with aiohttp.ClientSession() as session:
        url = gateway.make_url("/v1/chat/completions")
        async with session.post(url, json={"model": "gpt-4o"}, headers={"Authorization": "Bearer nope"}) as response:
            assert response.status == 401
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.APIStatusError):  # refused by the route's upstream: counted on the route, not here
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "[simulate status=429]"}]
        )

    _, _, text = await scrape(admin)
    samples, _ = parse(text)
    unrouted = {"route": "", "provider": "", "model": ""}
    assert value(samples, "modelyard_requests_total", **unrouted, status="401") == 1
    assert value(samples, "modelyard_request_errors_total", **unrouted, error_type="invalid_api_key") == 1
    assert value(samples, "modelyard_request_errors_total", **unrouted, error_type="model_not_found") == 1
    assert value(samples, "modelyard_requests_total", route="default/gpt-4o", status="429") == 1
    assert ("modelyard_requests_total", frozenset({**unrouted, "status": "429"}.items())) not in samples


async def test_a_fallback_is_counted_only_when_a_target_is_left_to_fall_back_to(
    client: openai.AsyncOpenAI, admin: test_utils.TestServer
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model="fallback", messages=[{"role": "user", "content": "[simulate status=503]"}]
        )
    assert caught.value.response.headers["x-modelyard-attempts"] == "4"  # two targets, each retried once
    _, _, text = await scrape(admin)
    samples, _ = parse(text)
    assert value(samples, "modelyard_fallbacks_total", route="default/fallback") == 1
