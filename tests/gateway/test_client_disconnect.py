"""A client that leaves before its answer is complete is recorded as a client disconnect (nginx's 499), in the
audit line, the server span and the metrics, never as a 200 success."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp import test_utils
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from modelyard_proxy.keys import METRICS
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import SCENARIOS
from tests.harness import DEMO_KEY, GatewayFactory, audit_records

ROUTE = {
    "apiVersion": "modelyard.io/v1alpha1",
    "kind": "ModelRoute",
    "metadata": {"name": "leaving", "namespace": "default"},
    "spec": {"model": "leaving", "targets": [{"credentialRef": {"name": "sim-openai"}, "model": "slow"}]},
}
SERVED = ("default/leaving", "openai", "slow")
#: A request abandoned before any target answered has no provider or model to its name.
UNSERVED = ("default/leaving", "", "")


@dataclasses.dataclass
class Watch:
    """A traced gateway serving the ``leaving`` route, and what it records."""

    gateway: test_utils.TestServer
    exporter: InMemorySpanExporter
    capsys: pytest.CaptureFixture[str]

    def sdk(self, **options: Any) -> openai.AsyncOpenAI:
        """An OpenAI client of the gateway (to be closed by the test)."""
        return openai.AsyncOpenAI(
            base_url=str(self.gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0, **options
        )

    async def assert_disconnect_recorded(self, labels: tuple[str, ...]) -> dict[str, Any]:
        """The request's audit line, once the gateway noticed the client left, checked with its span and
        metrics."""
        records: list[dict[str, Any]] = []
        for _ in range(100):
            records += audit_records(self.gateway.app, self.capsys)
            servers = [span for span in self.exporter.get_finished_spans() if span.kind is SpanKind.SERVER]
            if records and servers:
                break
            await asyncio.sleep(0.02)
        (record,) = records
        (server,) = servers
        assert (record["status"], record["code"]) == (499, "client_disconnected"), record
        assert server.attributes is not None
        assert server.attributes["error.type"] == "client_disconnected"
        assert server.attributes["http.response.status_code"] == 499
        assert server.status.status_code is StatusCode.ERROR
        metrics = self.gateway.app[METRICS]
        assert metrics.requests.values == {(*labels, "499"): 1}  # not a single 200
        assert metrics.errors.values == {(*labels, "499", "client_disconnected"): 1}
        return record


@pytest.fixture
async def watch(
    gateway_factory: GatewayFactory,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> AsyncIterator[Watch]:
    gateway = await gateway_factory(ROUTE, tracer_provider=provider)
    with caplog.at_level(logging.INFO, logger="modelyard.audit"):
        yield Watch(gateway, exporter, capsys)


def script(simulator: test_utils.TestServer, **behaviour: object) -> None:
    simulator.app[SCENARIOS].models["slow"] = Behaviour().overlay(behaviour)


async def test_a_stream_the_client_drops_is_a_client_disconnect_not_a_success(
    watch: Watch, simulator: test_utils.TestServer
) -> None:
    script(simulator, token_interval_ms="50")
    words: Any = [{"role": "user", "content": " ".join(["word"] * 40)}]
    async with watch.sdk() as sdk:
        stream = await sdk.chat.completions.create(model="leaving", messages=words, stream=True)
        async for chunk in stream:
            if any(choice.delta.content for choice in chunk.choices):
                break  # the client has what it wanted and hangs up mid-answer
        await stream.close()
    record = await watch.assert_disconnect_recorded(SERVED)
    assert record["ttft_ms"] is not None  # it did get its first token


async def test_a_whole_answer_the_client_stopped_waiting_for_is_a_client_disconnect(
    watch: Watch, simulator: test_utils.TestServer
) -> None:
    script(simulator, latency_ms="3000")
    async with watch.sdk(timeout=0.2) as sdk:
        with pytest.raises(openai.APITimeoutError):
            await sdk.chat.completions.create(model="leaving", messages=[{"role": "user", "content": "hello"}])
    record = await watch.assert_disconnect_recorded(UNSERVED)
    assert record["elapsed_ms"] < 3000  # the upstream call was abandoned with the client, not waited out
    assert record["tried"] == [{"target": "default/sim-openai|slow", "code": "cancelled"}]
