"""Consumers through the gateway, with the official OpenAI SDK, against a real Redis-protocol store.

Grants (403), rates (429 with the headers SDKs back off by), budgets that bursts cannot overspend, and
several gateways sharing one store's counts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from aiohttp import test_utils
from openai.types.chat import ChatCompletionMessageParam
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from modelyard_proxy.api.admin import create_admin_app
from modelyard_proxy.base.settings import ProxySettings
from modelyard_proxy.keys import COUNTERS, METRICS, STORE
from modelyard_proxy.relay.estimate import MESSAGE_OVERHEAD
from modelyard_routing.push import AdminToken
from modelyard_routing.usage import ADMIN_USAGE_PATH, UsageReport
from tests.harness import DEMO_KEY, GatewayFactory, audit_records, start_server
from tests.observability.test_metrics import parse, value
from tests.storeserver import StoreServer

pytestmark = pytest.mark.timeout(60)

TEAM_KEY = "sk-team-search-0123456789"
OTHER_KEY = "sk-team-ads-0123456789"
ADMIN_TOKEN = "consumers-test-admin-token"


def team(name: str, key: str, **spec: Any) -> list[dict[str, Any]]:
    """A Secret holding ``key`` and a ModelConsumer reading it."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-keys", "namespace": "default"},
            "stringData": {"key": key},
        },
        {
            "apiVersion": "modelyard.io/v1alpha1",
            "kind": "ModelConsumer",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"keys": {"secretRefs": [{"name": f"{name}-keys"}]}, "models": ["gpt-4o"], **spec},
        },
    ]


def settings(store: StoreServer | None, timeout_ms: float = 1000) -> ProxySettings:
    """Gateway settings counting in ``store``. The timeout is generous: on a busy test machine a store call
    that outlasts it fails open to the pod's own counters, which would blur what a test measures."""
    return ProxySettings(host="127.0.0.1", port=0, store_url=store.url if store else None, store_timeout_ms=timeout_ms)


def sdk(gateway: test_utils.TestServer, key: str = TEAM_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=key, max_retries=0)


async def ask(client: openai.AsyncOpenAI, text: str = "Hello!", max_tokens: int = 100) -> Any:
    return await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}], max_tokens=max_tokens
    )


async def usage(gateway: test_utils.TestServer) -> UsageReport:
    compiled = gateway.app[STORE].current
    assert compiled is not None
    return await gateway.app[COUNTERS].usage(compiled.table.consumers, 1)


async def test_a_model_outside_the_list_is_refused_and_hidden_from_the_model_list(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = await gateway_factory(*team("search", TEAM_KEY, models=["gpt-4o", "gemini-*"]))
    async with sdk(gateway) as client:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await client.chat.completions.create(model="claude-sonnet", messages=[{"role": "user", "content": "x"}])
        assert refused.value.code == "model_not_allowed"
        assert "default/search" in refused.value.message
        listed = {model.id async for model in client.models.list()}
        with pytest.raises(openai.NotFoundError):  # as absent one by one as in the list
            await client.models.retrieve("claude-sonnet")
        assert (await client.models.retrieve("gemini-flash")).id == "gemini-flash"
    assert listed == {"gpt-4o", "gpt-4o-latest", "gemini-flash", "gemini-embedding"}  # an alias of a granted route
    async with sdk(gateway, DEMO_KEY) as plain:
        everything = {model.id async for model in plain.models.list()}
    assert "claude-sonnet" in everything


async def test_requests_per_minute_give_429_with_the_headers_sdks_back_off_by(
    gateway_factory: GatewayFactory, store_server: StoreServer
) -> None:
    gateway = await gateway_factory(
        *team("search", TEAM_KEY, limits={"requestsPerMinute": 3}), settings=settings(store_server)
    )
    async with sdk(gateway) as client:
        remaining = []
        for _ in range(3):
            answer = await ask(client)
            remaining.append(answer.headers["x-ratelimit-remaining-requests"])
            assert answer.headers["x-ratelimit-limit-requests"] == "3"
        with pytest.raises(openai.RateLimitError) as limited:
            await ask(client)
    assert remaining == ["2", "1", "0"]
    assert limited.value.code == "rate_limit_exceeded"
    headers = limited.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    async with sdk(gateway, DEMO_KEY) as plain:  # a plain key is nobody's consumer: unlimited
        assert (await ask(plain)).http_response.status_code == 200


async def test_a_burst_of_fifty_cannot_overspend_a_budget_that_fits_ten(
    gateway_factory: GatewayFactory, store_server: StoreServer
) -> None:
    text = "hi [simulate latency-ms=3000]"  # none settles before all fifty have asked
    # The reservation: the prompt's bytes (an upper bound of its tokens) at gpt-4o's $2.50 per million, plus
    # max_tokens at $10 per million.
    prompt = len(text.encode()) + MESSAGE_OVERHEAD
    per_request = (prompt * 2.5 + 100 * 10) / 1_000_000
    budget = round(per_request * 10.5, 8)
    gateway = await gateway_factory(
        *team("search", TEAM_KEY, budgets=[{"period": "day", "usd": budget}]), settings=settings(store_server)
    )
    async with sdk(gateway) as client:
        results = await asyncio.gather(*(ask(client, text) for _ in range(50)), return_exceptions=True)
    served = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(served) == 10
    assert len(refused) == 40
    assert {r.code for r in refused} == {"budget_exceeded"}
    assert refused[0].response.headers["x-should-retry"] == "false"
    assert "day budget" in refused[0].message
    await asyncio.sleep(0.2)  # settlements run on their own tasks
    day = next(p for p in (await usage(gateway)).consumers[0].periods if p.period == "day")
    assert day.held_usd == pytest.approx(0.0, abs=1e-9)
    assert 0 < day.spent_usd <= budget


async def test_two_gateways_share_one_store(gateway_factory: GatewayFactory, store_server: StoreServer) -> None:
    manifests = team("search", TEAM_KEY, limits={"requestsPerMinute": 4})
    first = await gateway_factory(*manifests, settings=settings(store_server))
    second = await gateway_factory(*manifests, settings=settings(store_server))
    async with sdk(first) as one, sdk(second) as two:
        for client in (one, two, one, two):
            await ask(client)
        for client in (one, two):
            with pytest.raises(openai.RateLimitError):
                await ask(client)


async def test_the_audit_line_span_and_metrics_name_the_consumer_never_the_key(
    gateway_factory: GatewayFactory,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
) -> None:
    gateway = await gateway_factory(*team("search", TEAM_KEY, labels={"team": "search"}), tracer_provider=provider)
    with caplog.at_level(logging.INFO, logger="modelyard.audit"):
        async with sdk(gateway) as client:
            await ask(client)
            with pytest.raises(openai.PermissionDeniedError):
                await client.chat.completions.create(model="claude-sonnet", messages=[{"role": "user", "content": "x"}])
            with pytest.raises(openai.RateLimitError):  # the upstream's limit, not the consumer's
                await ask(client, "hi [simulate status=429]")
    records = audit_records(gateway.app, capsys)
    served = [r for r in records if r.get("status") == 200]
    assert served[0]["consumer"] == "default/search"
    assert served[0]["consumer_labels"] == {"team": "search"}
    assert TEAM_KEY not in orjson.dumps(records).decode()
    provider.force_flush()
    spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert {s.attributes["modelyard.consumer"] for s in spans if s.attributes} == {"default/search"}
    assert not any(TEAM_KEY in str(s.attributes) for s in spans)
    samples, _ = parse(gateway.app[METRICS].render(None, gateway.app[STORE]))
    assert value(samples, "modelyard_consumer_requests_total", consumer="default/search", outcome="served") == 1
    assert (
        value(samples, "modelyard_consumer_requests_total", consumer="default/search", outcome="model_not_allowed") == 1
    )
    assert value(samples, "modelyard_consumer_requests_total", consumer="default/search", outcome="failed") == 1
    assert (
        "modelyard_consumer_requests_total",
        frozenset({("consumer", "default/search"), ("outcome", "rate_limited")}),
    ) not in samples
    assert value(samples, "modelyard_consumer_cost_usd_total", consumer="default/search") > 0
    assert value(samples, "modelyard_consumer_info", consumer="default/search", team="search") == 1


async def test_a_store_outage_fails_open_or_closed_as_each_consumer_says_and_nothing_leaks(
    gateway_factory: GatewayFactory, store_server: StoreServer
) -> None:
    manifests = [
        *team("search", TEAM_KEY, limits={"requestsPerMinute": 100}, budgets=[{"period": "day", "usd": 5}]),
        *team("ads", OTHER_KEY, onStoreFailure="FailClosed", limits={"requestsPerMinute": 100}),
    ]
    gateway = await gateway_factory(*manifests, settings=settings(store_server, timeout_ms=50))
    async with sdk(gateway) as opened, sdk(gateway, OTHER_KEY) as closed:
        await ask(opened)
        await ask(closed)
        store_server.stop()
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert (await ask(opened)).http_response.status_code == 200
        with pytest.raises(openai.InternalServerError) as unavailable:
            await ask(closed)
        assert loop.time() - started < 2.0
        assert unavailable.value.status_code == 503
        assert unavailable.value.code == "limits_unavailable"
        store_server.start()
        await asyncio.sleep(1.2)  # the store is probed again at most once a second
        for _ in range(3):
            await ask(opened)
            await ask(closed)
    await asyncio.sleep(0.3)
    report = await usage(gateway)
    assert report.store_up
    search = next(c for c in report.consumers if c.name == "default/search")
    day = next(p for p in search.periods if p.period == "day")
    assert day.held_usd == pytest.approx(0.0, abs=1e-9)
    assert day.spent_usd > 0


async def test_the_admin_port_reports_usage_budgets_and_the_store_and_modelyard_usage_prints_it(
    gateway_factory: GatewayFactory, store_server: StoreServer
) -> None:
    gateway = await gateway_factory(
        *team("search", TEAM_KEY, budgets=[{"period": "day", "usd": 5}, {"period": "month", "usd": 50}]),
        settings=settings(store_server),
    )
    admin = await start_server(
        create_admin_app(
            gateway.app[STORE],
            AdminToken(value=ADMIN_TOKEN),
            metrics=gateway.app[METRICS],
            counters=gateway.app[COUNTERS],
        )
    )
    try:
        async with sdk(gateway) as client:
            for _ in range(2):
                await ask(client)
        await asyncio.sleep(0.2)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
            async with http.get(admin.make_url(f"{ADMIN_USAGE_PATH}?days=2")) as answer:
                report = UsageReport.model_validate_json(await answer.read())
            async with http.get(admin.make_url(f"{ADMIN_USAGE_PATH}?days=0")) as bad:
                assert bad.status == 400
            async with http.get(admin.make_url("/metrics")) as scraped:
                samples, _ = parse(await scraped.text())
        search = next(c for c in report.consumers if c.name == "default/search")
        assert report.store == "shared"
        assert report.store_up
        (day,) = [d for d in search.days if d.model == "gpt-4o"]
        assert day.requests == 2
        assert day.cost_usd > 0
        spent = next(p for p in search.periods if p.period == "day").spent_usd
        assert spent == pytest.approx(day.cost_usd)
        assert value(samples, "modelyard_store_up") == 1
        remaining = value(samples, "modelyard_consumer_budget_remaining_usd", consumer="default/search", period="day")
        assert remaining == pytest.approx(5 - spent)
        env = {**os.environ, "MODELYARD_ADMIN_TOKEN": ADMIN_TOKEN}
        printed = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "modelyard", "usage", "--admin-url", str(admin.make_url("")).rstrip("/")),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(printed.communicate(), timeout=30)
        assert printed.returncode == 0, err.decode()
        text = out.decode()
        assert "default/search" in text
        assert "gpt-4o" in text
        assert ADMIN_TOKEN not in text + err.decode()
    finally:
        await admin.close()


def route_with_profile() -> dict[str, Any]:
    """``llama``: an unpriced model by default, a priced one under the ``priced`` profile."""
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": "llama", "namespace": "default"},
        "spec": {
            "model": "llama",
            "targets": [{"credentialRef": {"name": "sim-openai"}, "model": "llama-3.3-70b"}],
            "profiles": [{"name": "priced", "targets": [{"credentialRef": {"name": "sim-openai"}, "model": "gpt-4o"}]}],
        },
    }


async def test_unpriced_models_can_be_refused_and_a_default_profile_applies(gateway_factory: GatewayFactory) -> None:
    budget = {"budgets": [{"period": "month", "usd": 10}], "unpricedModels": "Refuse", "models": ["llama"]}
    gateway = await gateway_factory(
        route_with_profile(),
        *team("strict", TEAM_KEY, **budget),
        *team("defaulted", OTHER_KEY, **budget, defaultProfile="priced"),
    )
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    async with sdk(gateway) as strict, sdk(gateway, OTHER_KEY) as defaulted:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await strict.chat.completions.create(model="llama", messages=messages)
        assert refused.value.code == "model_unpriced"
        assert "llama-3.3-70b" in refused.value.message
        answer = await defaulted.chat.completions.with_raw_response.create(model="llama", messages=messages)
    assert answer.headers["x-modelyard-upstream-model"] == "gpt-4o"


async def test_a_request_larger_than_the_token_rate_is_told_it_can_never_fit(
    gateway_factory: GatewayFactory, store_server: StoreServer
) -> None:
    gateway = await gateway_factory(
        *team("search", TEAM_KEY, limits={"tokensPerMinute": 500}), settings=settings(store_server)
    )
    async with sdk(gateway) as client:
        small = await ask(client)  # about 100 tokens reserved
        assert int(small.headers["x-ratelimit-remaining-tokens"]) < 500
        with pytest.raises(openai.RateLimitError) as limited:
            await ask(client, max_tokens=4000)
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["x-should-retry"] == "false"
    assert "500" in limited.value.message


async def test_concurrent_requests_beyond_the_limit_wait_their_turn(
    gateway_factory: GatewayFactory, store_server: StoreServer
) -> None:
    gateway = await gateway_factory(
        *team("search", TEAM_KEY, limits={"concurrentRequests": 2}), settings=settings(store_server)
    )
    async with sdk(gateway) as client:
        slow = [asyncio.create_task(ask(client, "hi [simulate latency-ms=1000]")) for _ in range(2)]
        await asyncio.sleep(0.3)
        with pytest.raises(openai.RateLimitError) as limited:
            await ask(client)
        await asyncio.gather(*slow)
        assert (await ask(client)).http_response.status_code == 200  # the slots came back
    assert "concurrent" in limited.value.message
    assert limited.value.response.headers["retry-after"] == "1"  # a slot frees when any request ends
    assert "x-should-retry" not in limited.value.response.headers
