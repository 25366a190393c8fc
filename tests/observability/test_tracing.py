"""Traces end to end: one server span per request, client spans once a request makes more than one upstream
attempt, GenAI attributes,
W3C trace context in and out, OTLP/HTTP export to a collector, and no prompt text unless asked for."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc
import openai
import orjson
import pytest
from aiohttp import test_utils, web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import modelyard_tracing as telemetry
from modelyard_proxy.base.settings import ProxySettings
from modelyard_proxy.observability.telemetry import GENAI_PROVIDER
from modelyard_routing import Provider
from modelyard_simulator import RequestLog
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import SCENARIOS
from tests.harness import DEMO_KEY, GatewayFactory, audit_records, start_server

SECRET_PROMPT = "my-private-diagnosis-7731"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"

FALLBACK_ROUTE = {
    "apiVersion": "modelyard.io/v1alpha1",
    "kind": "ModelRoute",
    "metadata": {"name": "fallback", "namespace": "default"},
    "spec": {
        "model": "fallback",
        "targets": [
            {"credentialRef": {"name": "sim-openai"}, "model": "broken-model"},
            {"credentialRef": {"name": "sim-openai"}, "model": "gpt-4o-mini", "priority": 1},
        ],
    },
}


@pytest.fixture
async def traced(
    gateway_factory: GatewayFactory, provider: TracerProvider, simulator: test_utils.TestServer
) -> test_utils.TestServer:
    simulator.app[SCENARIOS].models["broken-model"] = Behaviour().overlay({"status": "503"})
    return await gateway_factory(FALLBACK_ROUTE, tracer_provider=provider)


@pytest.fixture
async def sdk(traced: test_utils.TestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=str(traced.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as client:
        yield client


def by_kind(exporter: InMemorySpanExporter, kind: SpanKind) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind is kind]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_an_answer_from_the_first_attempt_is_one_server_span_naming_the_upstream(
    sdk: openai.AsyncOpenAI, exporter: InMemorySpanExporter
) -> None:
    await sdk.chat.completions.create(model="claude-sonnet", messages=[{"role": "user", "content": "hi"}])
    (server,) = by_kind(exporter, SpanKind.SERVER)
    assert not by_kind(exporter, SpanKind.CLIENT)
    assert server.name == "chat claude-sonnet"
    a = attrs(server)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "claude-sonnet"
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.response.model"] == "claude-sonnet-4-5"
    assert a["gen_ai.usage.input_tokens"] > 0
    assert a["gen_ai.usage.output_tokens"] > 0
    assert a["modelyard.route"] == "default/claude-sonnet"
    assert a["modelyard.attempts"] == 1
    assert a["modelyard.cost_usd"] > 0
    assert a["http.response.status_code"] == 200
    assert "error.type" not in a
    assert server.status.status_code is not StatusCode.ERROR
    assert a["modelyard.target"] == "default/sim-anthropic|claude-sonnet-4-5"
    assert a["modelyard.credential"] == "default/sim-anthropic"


async def test_a_fallback_shows_both_attempts_as_client_spans_under_the_request(
    sdk: openai.AsyncOpenAI, exporter: InMemorySpanExporter, upstream_log: RequestLog
) -> None:
    await sdk.chat.completions.create(model="fallback", messages=[{"role": "user", "content": "hi"}])
    (server,) = by_kind(exporter, SpanKind.SERVER)
    first, second = sorted(by_kind(exporter, SpanKind.CLIENT), key=lambda s: attrs(s)["modelyard.attempt"])
    # The first attempt's span is made when the second starts, with its own times and outcome.
    assert first.start_time is not None
    assert first.end_time is not None
    assert second.start_time is not None
    assert server.start_time is not None
    assert server.start_time <= first.start_time < first.end_time <= second.start_time
    # Its upstream call named the server span; the second's names its own span.
    sent = [request.header("traceparent") or "" for request in upstream_log]
    assert [parent.split("-")[2] for parent in sent] == [
        format(server.context.span_id, "016x"),
        format(second.context.span_id, "016x"),
    ]
    for attempt in (first, second):
        assert attempt.parent is not None
        assert attempt.parent.span_id == server.context.span_id
        assert attempt.context.trace_id == server.context.trace_id
    assert attrs(first)["gen_ai.request.model"] == "broken-model"
    assert attrs(first)["error.type"] == "upstream_unavailable"
    assert first.status.status_code is StatusCode.ERROR
    assert "modelyard.fallback_reason" not in attrs(first)
    assert attrs(second)["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs(second)["modelyard.attempt"] == 2
    assert attrs(second)["modelyard.fallback_reason"] == "upstream_unavailable"
    assert "error.type" not in attrs(second)
    assert attrs(server)["modelyard.attempts"] == 2
    assert attrs(server)["modelyard.fallback_reason"] == "upstream_unavailable"
    assert attrs(server)["gen_ai.response.model"] == "gpt-4o-mini"


async def test_a_stream_records_time_to_first_token_and_usage(
    sdk: openai.AsyncOpenAI, exporter: InMemorySpanExporter
) -> None:
    stream = await sdk.chat.completions.create(
        model="gemini-flash", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    async for _ in stream:
        pass
    (server,) = by_kind(exporter, SpanKind.SERVER)
    assert not by_kind(exporter, SpanKind.CLIENT)
    a = attrs(server)
    assert a["modelyard.stream"] is True
    assert 0 < a["gen_ai.server.time_to_first_token"] < 10
    assert a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.provider.name"] == "gcp.gemini"


def test_every_provider_has_its_semantic_conventions_name() -> None:
    """``gen_ai.provider.name`` takes the conventions' well-known values where there is one."""
    assert set(GENAI_PROVIDER) == {provider.value for provider in Provider}
    assert (GENAI_PROVIDER["bedrock"], GENAI_PROVIDER["vertex-ai"]) == ("aws.bedrock", "gcp.vertex_ai")


async def test_a_failed_request_carries_error_type(sdk: openai.AsyncOpenAI, exporter: InMemorySpanExporter) -> None:
    with pytest.raises(openai.NotFoundError):
        await sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.APIStatusError):
        await sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "[simulate status=401]"}]
        )
    not_found, auth = by_kind(exporter, SpanKind.SERVER)
    assert attrs(not_found)["error.type"] == "model_not_found"
    assert attrs(not_found)["http.response.status_code"] == 404
    assert attrs(auth)["error.type"] == "upstream_auth_failed"
    assert auth.status.status_code is StatusCode.ERROR


async def test_traceparent_is_continued_and_passed_upstream(
    sdk: openai.AsyncOpenAI, exporter: InMemorySpanExporter, upstream_log: RequestLog
) -> None:
    await sdk.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], extra_headers={"traceparent": TRACEPARENT}
    )
    (server,) = by_kind(exporter, SpanKind.SERVER)
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == "b7ad6b7169203331"
    (sent,) = list(upstream_log)
    upstream = sent.header("traceparent")
    assert upstream == f"00-{TRACE_ID}-{format(server.context.span_id, '016x')}-01"


async def test_without_tracing_the_client_traceparent_still_reaches_the_upstream(
    client: openai.AsyncOpenAI, upstream_log: RequestLog
) -> None:
    await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], extra_headers={"traceparent": TRACEPARENT}
    )
    (sent,) = list(upstream_log)
    assert sent.header("traceparent") == TRACEPARENT


@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet", "gemini-flash"])
async def test_prompt_text_never_reaches_spans_or_logs_by_default(
    traced: test_utils.TestServer,
    sdk: openai.AsyncOpenAI,
    exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    model: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    reply = await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": SECRET_PROMPT}])
    assert SECRET_PROMPT in (reply.choices[0].message.content or "")  # the simulator echoes it back
    stream = await sdk.chat.completions.create(
        model=model, messages=[{"role": "user", "content": SECRET_PROMPT}], stream=True
    )
    async for _ in stream:
        pass
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        dumped = span.to_json()
        assert SECRET_PROMPT not in dumped
        assert DEMO_KEY not in dumped
    assert SECRET_PROMPT not in caplog.text
    records = audit_records(traced.app, capsys)
    assert len(records) == 2
    audited = orjson.dumps(records).decode()
    assert SECRET_PROMPT not in audited
    assert DEMO_KEY not in audited


async def test_prompt_text_is_recorded_only_when_opted_in(
    gateway_factory: GatewayFactory, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    settings = dataclasses.replace(ProxySettings(host="127.0.0.1", port=0), capture_content=True)
    gateway = await gateway_factory(settings=settings, tracer_provider=provider)
    async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as sdk:
        await sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": SECRET_PROMPT}])
    (server,) = by_kind(exporter, SpanKind.SERVER)
    assert SECRET_PROMPT in attrs(server)["gen_ai.input.messages"]


# -- export over OTLP/HTTP, configured by the OTEL_* environment -------------------------------------------------


@pytest.fixture
async def collector() -> AsyncIterator[tuple[test_utils.TestServer, list[ExportTraceServiceRequest]]]:
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    server = await start_server(app)
    yield server, received
    await server.close()


def test_tracing_is_a_no_op_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert not telemetry.tracing_configured()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert telemetry.tracing_configured()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not telemetry.tracing_configured()


@pytest.fixture
def grpc_collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """An OTLP/gRPC trace collector on loopback: its endpoint and what it received."""
    received: list[ExportTraceServiceRequest] = []

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: ExportTraceServiceRequest, context: object) -> ExportTraceServiceResponse:
            received.append(request)
            return ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", received
    server.stop(grace=None)


async def exported_spans(
    gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch, endpoint: str, protocol: str
) -> None:
    """Serve one chat with a provider built from the OTEL_* environment, then flush it."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "modelyard-test")
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    provider = telemetry.tracer_provider_from_env("modelyard-proxy")
    assert isinstance(provider, TracerProvider)
    try:
        gateway = await gateway_factory(tracer_provider=provider)
        async with openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=DEMO_KEY, max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        # The batch processor exports from its own thread; flushing waits for it, off the event loop.
        assert await asyncio.to_thread(provider.force_flush, 10_000)
    finally:
        await asyncio.to_thread(provider.shutdown)


def assert_gateway_spans(received: list[ExportTraceServiceRequest]) -> None:
    spans = [
        (span.name, span.kind)
        for message in received
        for resource_spans in message.resource_spans
        for scope in resource_spans.scope_spans
        for span in scope.spans
    ]
    assert spans == [("chat gpt-4o", 2)]  # SPAN_KIND_SERVER: the first attempt answered
    resource = {a.key: a.value.string_value for a in received[0].resource_spans[0].resource.attributes}
    assert resource["service.name"] == "modelyard-test"


async def test_spans_are_exported_over_otlp_http_to_the_configured_endpoint(
    gateway_factory: GatewayFactory,
    collector: tuple[test_utils.TestServer, list[ExportTraceServiceRequest]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, received = collector
    await exported_spans(gateway_factory, monkeypatch, str(server.make_url("")).rstrip("/"), "http/protobuf")
    assert_gateway_spans(received)


async def test_spans_are_exported_over_otlp_grpc_to_the_configured_endpoint(
    gateway_factory: GatewayFactory,
    grpc_collector: tuple[str, list[ExportTraceServiceRequest]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint, received = grpc_collector
    await exported_spans(gateway_factory, monkeypatch, endpoint, "grpc")
    assert_gateway_spans(received)
