"""Attempt spans appear only from a request's second attempt on, every attempt then with its real times."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.status import StatusCode

from modelyard_proxy.relay.attempt_spans import AttemptSpans
from modelyard_tracing.lean import lean_tracer


def traced() -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return lean_tracer(provider, "test"), exporter


def test_a_single_attempt_makes_no_span_and_its_upstream_names_the_server_span() -> None:
    tracer, exporter = traced()
    server = tracer.start_span("chat m", kind=trace.SpanKind.SERVER)
    only = AttemptSpans(tracer, server).begin("chat upstream", {"modelyard.attempt": 1})
    assert only.context_span() is server
    only.finish({"gen_ai.usage.input_tokens": 3})
    server.end()
    assert [span.name for span in exporter.get_finished_spans()] == ["chat m"]


def test_hedged_attempts_both_get_spans_the_first_backdated_and_ended_when_it_ends() -> None:
    tracer, exporter = traced()
    server = tracer.start_span("chat m", kind=trace.SpanKind.SERVER)
    attempts = AttemptSpans(tracer, server)
    first = attempts.begin("chat a", {"modelyard.attempt": 1})
    second = attempts.begin("chat b", {"modelyard.attempt": 2, "modelyard.hedge": True})
    assert first.span is not None  # made when the hedge started, still open
    assert second.context_span() is second.span
    second.finish({"error.type": "cancelled"})
    first.finish({"gen_ai.usage.output_tokens": 9})
    first.finish({"ignored": True})  # finishing twice changes nothing
    server.end()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    a, b = spans["chat a"], spans["chat b"]
    assert a.start_time is not None
    assert b.start_time is not None
    assert a.start_time <= b.start_time
    assert dict(a.attributes or {}) == {"modelyard.attempt": 1, "gen_ai.usage.output_tokens": 9}
    assert (b.attributes or {})["error.type"] == "cancelled"
    assert b.status.status_code is StatusCode.UNSET
    for span in (a, b):
        assert span.parent is not None
        assert span.parent.span_id == server.get_span_context().span_id


def test_a_failed_first_attempt_is_recorded_as_it_happened_once_a_retry_starts() -> None:
    tracer, exporter = traced()
    server = tracer.start_span("chat m", kind=trace.SpanKind.SERVER)
    attempts = AttemptSpans(tracer, server)
    failed = attempts.begin("chat a", {"modelyard.attempt": 1})
    failed.finish({"error.type": "upstream_unavailable"}, error=True)
    assert not exporter.get_finished_spans()  # nothing yet: it may stay the only attempt
    retry = attempts.begin("chat a", {"modelyard.attempt": 2, "modelyard.retry": 1})
    (recorded,) = exporter.get_finished_spans()
    assert recorded.end_time == failed.ended
    assert recorded.status.status_code is StatusCode.ERROR
    assert (recorded.attributes or {})["error.type"] == "upstream_unavailable"
    retry.finish()
    assert len(exporter.get_finished_spans()) == 2


def test_without_tracing_nothing_is_kept() -> None:
    attempts = AttemptSpans(trace.NoOpTracer(), trace.INVALID_SPAN)
    first = attempts.begin("chat a", {})
    second = attempts.begin("chat b", {})
    assert first.span is None
    assert second.span is None
    assert second.context_span() is trace.INVALID_SPAN
