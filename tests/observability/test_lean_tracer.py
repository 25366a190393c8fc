"""The lean tracer against the SDK's own: the same exported data, the same sampling and propagation."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, DEFAULT_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.status import StatusCode

from modelyard_tracing.lean import LeanSpan, lean_tracer


def provider_with(exporter: InMemorySpanExporter, **options: object) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "lean-test"}), **options)  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def request_spans(tracer: trace.Tracer) -> None:
    """What the proxy does per request: a server span, a client child, attributes, a status, both ended."""
    server = tracer.start_span("POST /v1/chat/completions", kind=trace.SpanKind.SERVER, attributes={"a": 1})
    server.update_name("chat gpt-4o")
    client = tracer.start_span(
        "chat gpt-4o-2024", context=trace.set_span_in_context(server), kind=trace.SpanKind.CLIENT
    )
    client.set_attributes({"gen_ai.usage.input_tokens": 3, "modelyard.target": "t"})
    client.set_status(StatusCode.ERROR)
    client.end()
    server.set_attribute("http.response.status_code", 502)
    server.set_status(trace.Status(StatusCode.ERROR, "upstream failed"))
    server.end()


def comparable(span: ReadableSpan) -> tuple[object, ...]:
    return (
        span.name,
        span.kind,
        dict(span.attributes or {}),
        span.status.status_code,
        span.status.description,
        span.parent is not None,
        span.resource.attributes.get("service.name"),
        span.instrumentation_scope.name if span.instrumentation_scope else None,
        span.context.trace_flags.sampled,
    )


def test_exported_spans_are_what_the_sdk_tracer_exports() -> None:
    sdk_exporter, lean_exporter = InMemorySpanExporter(), InMemorySpanExporter()
    request_spans(provider_with(sdk_exporter).get_tracer("modelyard_proxy"))
    request_spans(lean_tracer(provider_with(lean_exporter), "modelyard_proxy"))
    sdk_spans, lean_spans = sdk_exporter.get_finished_spans(), lean_exporter.get_finished_spans()
    assert [comparable(s) for s in lean_spans] == [comparable(s) for s in sdk_spans]
    client, server = lean_spans
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id
    assert client.context.trace_id == server.context.trace_id
    assert server.start_time is not None
    assert server.end_time is not None
    assert server.start_time <= server.end_time


def test_a_clients_traceparent_is_continued_and_injected_onward() -> None:
    exporter = InMemorySpanExporter()
    tracer = lean_tracer(provider_with(exporter), "modelyard_proxy")
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    parent = TraceContextTextMapPropagator().extract({"traceparent": incoming})
    span = tracer.start_span("server", context=parent, kind=trace.SpanKind.SERVER)
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
    span.end()
    assert carrier["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert carrier["traceparent"].split("-")[2] == f"{span.get_span_context().span_id:016x}"
    (exported,) = exporter.get_finished_spans()
    assert exported.parent is not None
    assert exported.parent.span_id == 0xB7AD6B7169203331


def test_the_providers_sampler_decides() -> None:
    exporter = InMemorySpanExporter()
    dropped = lean_tracer(provider_with(exporter, sampler=ALWAYS_OFF), "modelyard_proxy")
    span = dropped.start_span("never")
    assert not span.is_recording()
    assert span.get_span_context().is_valid  # ids still travel upstream
    span.end()
    ratio = lean_tracer(provider_with(exporter, sampler=ParentBased(TraceIdRatioBased(0.0))), "modelyard_proxy")
    assert not ratio.start_span("unsampled root").is_recording()
    sampled_parent = TraceContextTextMapPropagator().extract(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    )
    child = ratio.start_span("sampled parent", context=sampled_parent)
    assert child.is_recording()  # parent-based: a sampled caller's trace is kept
    child.end()
    assert [s.name for s in exporter.get_finished_spans()] == ["sampled parent"]


def test_an_ended_span_takes_no_more_writes_and_is_exported_once() -> None:
    exporter = InMemorySpanExporter()
    span = lean_tracer(provider_with(exporter), "modelyard_proxy").start_span("once")
    assert isinstance(span, LeanSpan)
    span.set_status(StatusCode.OK)
    span.set_status(StatusCode.ERROR)  # OK is final, as in the SDK
    span.record_exception(ValueError("bad value"))
    span.end()
    span.end()
    span.set_attribute("late", True)
    span.update_name("renamed")
    (exported,) = exporter.get_finished_spans()
    assert exported.name == "once"
    assert "late" not in (exported.attributes or {})
    assert exported.status.status_code is StatusCode.OK
    (event,) = exported.events
    assert event.name == "exception"
    assert (event.attributes or {})["exception.type"] == "ValueError"


def test_a_non_sdk_provider_keeps_its_own_tracer() -> None:
    tracer = lean_tracer(trace.NoOpTracerProvider(), "modelyard_proxy")
    assert not tracer.start_span("free").is_recording()


def test_upstream_trace_headers_are_what_the_propagator_injects() -> None:
    from modelyard_proxy.observability.telemetry import PROPAGATOR, trace_headers  # noqa: PLC0415

    exporter = InMemorySpanExporter()
    tracer = lean_tracer(provider_with(exporter), "modelyard_proxy")
    incoming = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=opaque,other=1",
    }
    parent = PROPAGATOR.extract(incoming)
    span = tracer.start_span("attempt", context=parent)
    for case_span, case_parent in ((span, parent), (trace.INVALID_SPAN, parent), (trace.INVALID_SPAN, None)):
        injected: dict[str, str] = {}
        context = trace.set_span_in_context(case_span) if case_span.get_span_context().is_valid else case_parent
        PROPAGATOR.inject(injected, context=context)
        assert trace_headers(case_span, case_parent) == injected
    assert trace_headers(span, None)["tracestate"] == "vendor=opaque,other=1"


def test_the_default_and_always_on_samplers_are_decided_as_the_sdk_decides() -> None:
    unsampled = TraceContextTextMapPropagator().extract(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", "tracestate": "k=v"}
    )
    for sampler in (DEFAULT_ON, ALWAYS_ON):
        sdk_span = provider_with(InMemorySpanExporter(), sampler=sampler).get_tracer("t").start_span("s", unsampled)
        lean_span = lean_tracer(provider_with(InMemorySpanExporter(), sampler=sampler), "t").start_span("s", unsampled)
        assert lean_span.is_recording() == sdk_span.is_recording() == (sampler is ALWAYS_ON)
        lean_context, sdk_context = lean_span.get_span_context(), sdk_span.get_span_context()
        assert (lean_context.trace_flags, lean_context.trace_state) == (
            sdk_context.trace_flags,
            sdk_context.trace_state,
        )
        assert lean_context.trace_id == sdk_context.trace_id
    root = lean_tracer(provider_with(InMemorySpanExporter()), "t").start_span("root")
    assert root.is_recording()
    assert root.get_span_context().trace_flags.sampled
