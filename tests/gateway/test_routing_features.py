"""Routing beyond priority order, end to end: hedging, weighted splits, profiles, wildcard names, guard
rails, fault injection, transparency headers, the audit line, and health that survives a table swap."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
import pytest
from aiohttp import test_utils

from modelyard_proxy.keys import HEALTH, STORE
from modelyard_proxy.routing.health import BreakerState
from modelyard_routing import compile_inventory
from modelyard_simulator import RequestLog
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import SCENARIOS
from tests.harness import DEMO_KEY, GatewayFactory, audit_records, example_inventory


def route(name: str, targets: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"model": name, "targets": targets, **spec},
    }


def target(model: str, **extra: Any) -> dict[str, Any]:
    return {"credentialRef": {"name": "sim-openai"}, "model": model, **extra}


MANIFESTS = [
    route("hedged", [target("slow"), target("quick", priority=1)], strategy={"type": "hedge", "hedgeDelay": "50ms"}),
    route(
        "canary",
        [target("stable", weight=9), target("canary-model", weight=1, priority=1)],
        strategy={"type": "weighted"},
    ),
    route(
        "chat",
        [target("chat-model")],
        modelPatterns=["chat-*"],
        profiles=[{"name": "extraction", "targets": [target("extract-model")]}],
    ),
    route(
        "rehearsal",
        [target("rehearsed"), target("fallback", priority=1)],
        faults={"abortPercent": 100, "abortStatus": 503},
    ),
    route(
        "guarded",
        [target("local-model", pricePerMTokens=1), target("pricey", priority=1, pricePerMTokens=30)],
        require={"regions": ["local"], "maxPricePerMTokens": 10},
    ),
    route(
        "fragile",
        [target("flaky"), target("steady", priority=1)],
        circuitBreaker={"minRequests": 2, "failureRatePercent": 50, "cooldown": "1m"},
    ),
]


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory) -> test_utils.TestServer:
    return await gateway_factory(*MANIFESTS)


@pytest.fixture
async def sdk(gateway: test_utils.TestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as client:
        yield client


def script(simulator: test_utils.TestServer, model: str, **behaviour: object) -> None:
    simulator.app[SCENARIOS].models[model] = Behaviour().overlay(behaviour)


async def served_by(sdk: openai.AsyncOpenAI, model: str, **kwargs: Any) -> tuple[str, dict[str, str]]:
    raw = await sdk.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}], **kwargs
    )
    headers = {k: v for k, v in raw.headers.items() if k.startswith("x-modelyard-")}
    return headers["x-modelyard-upstream-model"], headers


@pytest.mark.parametrize("stream", [False, True])
async def test_hedge_takes_the_first_answer_and_cancels_the_loser(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer, upstream_log: RequestLog, *, stream: bool
) -> None:
    script(simulator, "slow", latency_ms="2000")
    started = time.monotonic()
    model, headers = await served_by(sdk, "hedged", stream=stream)
    assert model == "quick"
    assert headers["x-modelyard-attempts"] == "2"
    assert time.monotonic() - started < 0.5
    assert sorted(entry.body["model"] for entry in upstream_log) == ["quick", "slow"]


async def test_weighted_split_sends_about_a_tenth_to_the_canary(sdk: openai.AsyncOpenAI) -> None:
    picks = [(await served_by(sdk, "canary"))[0] for _ in range(200)]
    assert 5 <= picks.count("canary-model") <= 40


async def test_profiles_and_wildcard_names(sdk: openai.AsyncOpenAI) -> None:
    assert (await served_by(sdk, "chat"))[0] == "chat-model"
    assert (await served_by(sdk, "chat-2025-preview"))[0] == "chat-model"
    extraction = await served_by(sdk, "chat", extra_headers={"x-modelyard-profile": "extraction"})
    assert extraction[0] == "extract-model"
    by_metadata = await served_by(sdk, "chat", metadata={"modelyard_profile": "extraction"})
    assert by_metadata[0] == "extract-model"
    assert (await served_by(sdk, "chat", extra_headers={"x-modelyard-profile": "nope"}))[0] == "chat-model"


async def test_fault_injection_exercises_the_fallback(sdk: openai.AsyncOpenAI, upstream_log: RequestLog) -> None:
    model, headers = await served_by(sdk, "rehearsal")
    assert (model, headers["x-modelyard-attempts"]) == ("fallback", "2")
    assert [entry.body["model"] for entry in upstream_log] == ["fallback"]  # the abort never reached upstream


async def test_guard_rails_leave_out_targets_that_break_them(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer
) -> None:
    script(simulator, "local-model", status="503")
    with pytest.raises(openai.APIStatusError) as caught:
        await sdk.chat.completions.create(model="guarded", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 503  # the pricier fallback is not in the table at all
    assert caught.value.response.headers["x-modelyard-route"] == "default/guarded"
    result = compile_inventory(example_inventory("http://sim"), 1)
    inventory = example_inventory("http://sim")
    inventory.add_document(MANIFESTS[4], "test")
    result = compile_inventory(inventory, 1)
    (conditions,) = [c for ref, c in result.conditions.items() if ref.name == "guarded"]
    assert "pricePerMTokens 30 is above maxPricePerMTokens 10" in conditions[1].message


async def test_every_answer_names_its_route_provider_model_and_attempts_and_is_audited(
    gateway: test_utils.TestServer,
    sdk: openai.AsyncOpenAI,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with caplog.at_level(logging.INFO, logger="modelyard.audit"):
        _, headers = await served_by(sdk, "gpt-4o")
    cost = headers.pop("x-modelyard-cost-usd")  # priced by the built-in gpt-4o default
    assert headers == {
        "x-modelyard-route": "default/gpt-4o",
        "x-modelyard-provider": "openai",
        "x-modelyard-upstream-model": "gpt-4o-2024-08-06",
        "x-modelyard-attempts": "1",
    }
    (record,) = audit_records(gateway.app, capsys)
    assert float(cost) == pytest.approx(record["cost_usd"])
    assert record["cost_usd"] > 0
    assert record["route"] == "default/gpt-4o"
    assert record["status"] == 200
    assert record["attempts"] == 1
    assert "hi" not in orjson.dumps(record).decode().replace("history", "")  # no prompt text


async def test_breaker_opens_skips_the_target_and_survives_a_table_swap(
    sdk: openai.AsyncOpenAI, simulator: test_utils.TestServer, gateway: test_utils.TestServer, upstream_log: RequestLog
) -> None:
    script(simulator, "flaky", status="500")
    for _ in range(2):
        assert (await served_by(sdk, "fragile"))[0] == "steady"
    assert gateway.app[HEALTH]["default/sim-openai|flaky"].state is BreakerState.OPEN
    inventory = example_inventory(str(simulator.make_url("")).rstrip("/"))
    for doc in MANIFESTS:
        inventory.add_document(doc, "test")
    gateway.app[STORE].apply(compile_inventory(inventory, generation=2).table)
    upstream_log.clear()
    model, headers = await served_by(sdk, "fragile")
    assert (model, headers["x-modelyard-attempts"]) == ("steady", "1")
    assert [entry.body["model"] for entry in upstream_log] == ["steady"]
